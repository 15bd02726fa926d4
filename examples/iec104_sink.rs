//! Minimal IEC 60870-5-104 master for the throughput benchmark (`bench/iec104.sh`): the
//! ceiling that a real master (c104) is compared with.
//!
//! Connects, sends STARTDT act, acknowledges received I-frames with an S-frame every `w`
//! frames (as lib60870 does), answers TESTFR act, and counts ASDUs and information objects
//! over a measurement window that starts `--warmup` seconds after STARTDT con. Prints one
//! JSON line: `{"asdus_per_s": .., "objects_per_s": .., "seconds": .., ...}`.
//!
//! ```text
//! cargo run --release --example iec104_sink -- --connect 127.0.0.1:2404 --seconds 8
//! ```

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use ocpp809::iec104::apci::{self, Apdu, UFunction, SEQ_MODULUS};

#[derive(Debug)]
struct Args {
    connect: SocketAddr,
    w: u16,
    warmup: f64,
    seconds: f64,
    connect_timeout: f64,
}

fn usage() -> &'static str {
    "usage: iec104_sink --connect ADDR:PORT [--w W] [--warmup S] [--seconds S] \
     [--connect-timeout S]"
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        connect: "127.0.0.1:2404".parse()?,
        w: 8,
        warmup: 2.0,
        seconds: 8.0,
        connect_timeout: 10.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            println!("{}", usage());
            std::process::exit(0);
        }
        let value = it
            .next()
            .with_context(|| format!("{flag} needs a value\n{}", usage()))?;
        match flag.as_str() {
            "--connect" => args.connect = value.parse().context("--connect")?,
            "--w" => args.w = value.parse().context("--w")?,
            "--warmup" => args.warmup = value.parse().context("--warmup")?,
            "--seconds" => args.seconds = value.parse().context("--seconds")?,
            "--connect-timeout" => {
                args.connect_timeout = value.parse().context("--connect-timeout")?
            }
            other => bail!("unknown argument {other}\n{}", usage()),
        }
    }
    if args.w == 0 || args.seconds <= 0.0 || args.warmup < 0.0 {
        bail!("--w must be at least 1, --seconds positive, --warmup not negative");
    }
    Ok(args)
}

fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream> {
    let deadline = Instant::now() + timeout;
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(stream) => return Ok(stream),
            Err(error) if Instant::now() < deadline => {
                let _ = error;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(error) => return Err(error).with_context(|| format!("connecting to {addr}")),
        }
    }
}

fn send(stream: &mut TcpStream, apdu: &Apdu) -> Result<()> {
    let mut out = Vec::with_capacity(6);
    apdu.encode(&mut out)?;
    stream.write_all(&out).context("writing")
}

#[derive(Default)]
struct Counts {
    asdus: u64,
    objects: u64,
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let mut stream = connect(args.connect, Duration::from_secs_f64(args.connect_timeout))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_millis(100)))?;
    send(&mut stream, &Apdu::U(UFunction::StartDtAct))?;

    let mut buf = vec![0u8; 64 * 1024];
    let mut pending: Vec<u8> = Vec::with_capacity(128 * 1024);
    let mut next_recv: u16 = 0;
    let mut unacked: u16 = 0;
    let mut started: Option<Instant> = None;
    let mut window: Option<(Instant, Instant)> = None;
    let mut total = Counts::default();
    let mut measured = Counts::default();
    let give_up = Instant::now() + Duration::from_secs_f64(args.connect_timeout);

    loop {
        let now = Instant::now();
        if let Some((_, end)) = window {
            if now >= end {
                break;
            }
        } else if now >= give_up {
            bail!("no STARTDT con within {} s", args.connect_timeout);
        }
        let n = match stream.read(&mut buf) {
            Ok(0) => bail!("connection closed by the station"),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                // Idle: acknowledge what we have (a t2 shortcut), so a w above the
                // station's k cannot deadlock the link.
                if unacked > 0 {
                    send(
                        &mut stream,
                        &Apdu::S {
                            recv_seq: next_recv,
                        },
                    )?;
                    unacked = 0;
                }
                continue;
            }
            Err(e) => return Err(e).context("reading"),
        };
        let now = Instant::now();
        let in_window = matches!(window, Some((begin, end)) if now >= begin && now < end);
        pending.extend_from_slice(&buf[..n]);
        let mut used = 0;
        while let Some((apdu, len)) = apci::decode(&pending[used..]).context("APCI")? {
            used += len;
            match apdu {
                Apdu::I { send_seq, asdu, .. } => {
                    if send_seq != next_recv {
                        bail!("I-frame N(S)={send_seq}, expected {next_recv}");
                    }
                    next_recv = (next_recv + 1) % SEQ_MODULUS;
                    // Octet 2 of the ASDU is the variable structure qualifier: SQ + number.
                    let objects = u64::from(asdu.get(1).copied().unwrap_or(0) & 0x7F);
                    total.asdus += 1;
                    total.objects += objects;
                    if in_window {
                        measured.asdus += 1;
                        measured.objects += objects;
                    }
                    unacked += 1;
                    if unacked >= args.w {
                        send(
                            &mut stream,
                            &Apdu::S {
                                recv_seq: next_recv,
                            },
                        )?;
                        unacked = 0;
                    }
                }
                Apdu::U(UFunction::StartDtCon) => {
                    if started.is_none() {
                        let begin = now + Duration::from_secs_f64(args.warmup);
                        started = Some(now);
                        window = Some((begin, begin + Duration::from_secs_f64(args.seconds)));
                    }
                }
                Apdu::U(UFunction::TestFrAct) => send(&mut stream, &Apdu::U(UFunction::TestFrCon))?,
                Apdu::U(_) | Apdu::S { .. } => {}
            }
        }
        pending.drain(..used);
    }
    let _ = send(
        &mut stream,
        &Apdu::S {
            recv_seq: next_recv,
        },
    );
    println!(
        "{{\"master\":\"rust-sink\",\"asdus_per_s\":{:.0},\"objects_per_s\":{:.0},\"seconds\":{:.3},\"asdus\":{},\"objects\":{},\"asdus_total\":{}}}",
        measured.asdus as f64 / args.seconds,
        measured.objects as f64 / args.seconds,
        args.seconds,
        measured.asdus,
        measured.objects,
        total.asdus
    );
    Ok(())
}
