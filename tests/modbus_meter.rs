//! The meter poller (`ocpp809::modbus::run_meter`) against a real Modbus peer: the pymodbus
//! server in `tests/interop/modbus_meter_sim.py`, over TCP on 127.0.0.1 and over RTU on a
//! socat pseudo-terminal pair (CONTRACT §7 "Modbus").
//!
//! Needs `OCPP_TEST_PYTHON` (tests/run.sh exports the venv's python, which has pymodbus);
//! without it each test prints a NOTICE and passes. The RTU test also needs `socat`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use ocpp809::config::{Measurand, Meter, MeterRegister, Parity, RegisterType, Unit, WordOrder};
use ocpp809::mapping::meter::{MeterEvent, MeterReading};
use ocpp809::modbus::run_meters;

const POLL_MS: u64 = 200;

fn python() -> Option<String> {
    match std::env::var("OCPP_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            eprintln!(
                "NOTICE: OCPP_TEST_PYTHON is not set (tests/run.sh sets it to the venv's \
                 python with `pymodbus`); skipping the Modbus meter interop test"
            );
            None
        }
    }
}

fn sim_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/modbus_meter_sim.py")
}

/// The simulator process; killed and reaped however the test ends.
struct Sim {
    child: Child,
    stdin: ChildStdin,
    lines: std_mpsc::Receiver<String>,
}

impl Sim {
    /// Starts the simulator and waits for its `LISTENING <port>` / `READY` line.
    fn start(python: &str, transport: &[&str], registers: &Path) -> (Sim, Option<u16>) {
        let mut child = Command::new(python)
            .arg(sim_script())
            .args(transport)
            .arg("--registers")
            .arg(registers)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start modbus_meter_sim.py");
        let stdin = child.stdin.take().expect("sim stdin");
        let stdout = child.stdout.take().expect("sim stdout");
        let (tx, lines) = std_mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut sim = Sim {
            child,
            stdin,
            lines,
        };
        let first = sim.line(Duration::from_secs(20));
        let port = if let Some(p) = first.strip_prefix("LISTENING ") {
            Some(p.trim().parse().expect("port number"))
        } else {
            assert_eq!(first, "READY", "unexpected simulator banner");
            None
        };
        (sim, port)
    }

    fn line(&mut self, within: Duration) -> String {
        self.lines
            .recv_timeout(within)
            .expect("simulator line (did it start? see stderr)")
    }

    /// Sends a command and waits for its `OK`.
    fn command(&mut self, cmd: &str) {
        writeln!(self.stdin, "{cmd}").expect("write to simulator");
        self.stdin.flush().expect("flush simulator stdin");
        let answer = self.line(Duration::from_secs(5));
        assert_eq!(answer, format!("OK {cmd}"));
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn f32_words(v: f32) -> [u16; 2] {
    let b = v.to_bits();
    [(b >> 16) as u16, b as u16]
}

fn reg(
    measurand: Measurand,
    function: u8,
    address: u16,
    ty: RegisterType,
    order: WordOrder,
    scale: f64,
    unit: Unit,
) -> MeterRegister {
    MeterRegister {
        measurand,
        function,
        address,
        r#type: ty,
        word_order: order,
        scale,
        unit,
    }
}

fn meter(
    name: &str,
    tcp: Option<String>,
    rtu: Option<String>,
    register: Vec<MeterRegister>,
) -> Meter {
    Meter {
        name: name.into(),
        tcp,
        rtu,
        baud: 19200,
        parity: Parity::None,
        unit_id: 1,
        poll_ms: POLL_MS,
        ioa_base: 900,
        grid_meter: false,
        register,
    }
}

/// The register contents both word-order maps are served from:
/// big word order at 0.., little word order at 100.., holding registers at 200.. (function 3).
fn register_file(name: &str) -> PathBuf {
    let p230 = f32_words(230.5);
    let p_power = f32_words(-1234.25);
    let energy: u64 = 0x0001_0002_0003_0004; // 281483566841860 Wh
    let e = [
        (energy >> 48) as u16,
        (energy >> 32) as u16,
        (energy >> 16) as u16,
        energy as u16,
    ];
    let amps: u32 = 163_840 + 7; // ×0.001 A = 163.847 A
    let a = [(amps >> 16) as u16, amps as u16];
    let regs = json!({
        "input": {
            "0": [p_power[0], p_power[1]],
            "4": [e[0], e[1], e[2], e[3]],
            "10": [a[0], a[1]],
            "12": [p230[0], p230[1]],
            "100": [p_power[1], p_power[0]],
            "104": [e[3], e[2], e[1], e[0]],
            "110": [a[1], a[0]],
            "112": [p230[1], p230[0]],
        },
        "holding": {
            "200": [f32_words(7.5)[0], f32_words(7.5)[1]],
        }
    });
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("modbus_regs_{name}.json"));
    std::fs::write(&path, regs.to_string()).expect("write register file");
    path
}

fn map(base: u16, order: WordOrder) -> Vec<MeterRegister> {
    vec![
        reg(
            Measurand::PowerActiveImport,
            4,
            base,
            RegisterType::F32,
            order,
            1.0,
            Unit::W,
        ),
        reg(
            Measurand::EnergyActiveImportRegister,
            4,
            base + 4,
            RegisterType::U64,
            order,
            1.0,
            Unit::Wh,
        ),
        reg(
            Measurand::CurrentImport,
            4,
            base + 10,
            RegisterType::U32,
            order,
            0.001,
            Unit::A,
        ),
        reg(
            Measurand::Voltage,
            4,
            base + 12,
            RegisterType::F32,
            order,
            1.0,
            Unit::V,
        ),
    ]
}

fn expected() -> MeterReading {
    MeterReading {
        power_w: Some(-1234.25),
        energy_wh: Some(0x0001_0002_0003_0004u64 as f64),
        current_a: Some(163_847.0 * 0.001),
        voltage_v: Some(230.5),
    }
}

struct Poller {
    events: mpsc::Receiver<MeterEvent>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Poller {
    fn spawn(meters: Vec<Meter>) -> Poller {
        // The poller's log lines (first failure, recovery, parity warning) in the test output.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_ansi(false)
            .with_env_filter("ocpp809=debug")
            .try_init();
        let (tx, events) = mpsc::channel(64);
        let (shutdown, rx) = watch::channel(false);
        // As the runtime does: one task per connection, RTU meters on one device share one.
        let task = tokio::spawn(run_meters(
            meters,
            tx,
            rx,
            ocpp809::health::Health::default(),
        ));
        Poller {
            events,
            shutdown,
            task,
        }
    }

    /// Waits for the first event matching `want` within `within`.
    async fn wait_for(
        &mut self,
        within: Duration,
        what: &str,
        want: impl Fn(&MeterEvent) -> bool,
    ) -> MeterEvent {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(ev)) if want(&ev) => return ev,
                Ok(Some(ev)) => seen.push(ev),
                Ok(None) => panic!("poller ended while waiting for {what}"),
                Err(_) => panic!(
                    "no {what} within {within:?}; last events: {:#?}",
                    &seen[seen.len().saturating_sub(3)..]
                ),
            }
        }
    }

    async fn stop(self) {
        let _ = self.shutdown.send(true);
        tokio::time::timeout(Duration::from_secs(2), self.task)
            .await
            .expect("pollers stop within 2 s of shutdown")
            .expect("poller task");
    }
}

fn is_reading(meter: usize) -> impl Fn(&MeterEvent) -> bool {
    move |ev| matches!(ev, MeterEvent::Reading { meter: m, .. } if *m == meter)
}

fn failed_with(meter: usize, text: &'static str) -> impl Fn(&MeterEvent) -> bool {
    move |ev| matches!(ev, MeterEvent::Failed { meter: m, error, .. } if *m == meter && error.contains(text))
}

fn reading_of(ev: &MeterEvent) -> MeterReading {
    match ev {
        MeterEvent::Reading { reading, .. } => *reading,
        other => panic!("not a reading: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_reads_f32_u32_u64_in_both_word_orders_and_holding_registers() {
    let Some(python) = python() else { return };
    let regs = register_file("orders");
    let (_sim, port) = Sim::start(&python, &["--tcp", "127.0.0.1:0"], &regs);
    let addr = format!("127.0.0.1:{}", port.expect("tcp port"));
    let mut little = map(100, WordOrder::Little);
    // Voltage from a holding register instead (function 3) on the little-endian meter.
    little[3] = reg(
        Measurand::Voltage,
        3,
        200,
        RegisterType::F32,
        WordOrder::Big,
        1.0,
        Unit::V,
    );
    let mut poller = Poller::spawn(vec![
        meter("big", Some(addr.clone()), None, map(0, WordOrder::Big)),
        meter("little", Some(addr), None, little),
    ]);
    let big = poller
        .wait_for(Duration::from_secs(5), "reading of meter 0", is_reading(0))
        .await;
    assert_eq!(reading_of(&big), expected());
    let little = poller
        .wait_for(Duration::from_secs(5), "reading of meter 1", is_reading(1))
        .await;
    assert_eq!(
        reading_of(&little),
        MeterReading {
            voltage_v: Some(7.5),
            ..expected()
        }
    );
    poller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exception_response_fails_the_poll_and_normal_answers_recover_it() {
    let Some(python) = python() else { return };
    let regs = register_file("exception");
    let (mut sim, port) = Sim::start(&python, &["--tcp", "127.0.0.1:0"], &regs);
    let addr = format!("127.0.0.1:{}", port.expect("tcp port"));
    let mut poller = Poller::spawn(vec![meter("m", Some(addr), None, map(0, WordOrder::Big))]);
    poller
        .wait_for(Duration::from_secs(5), "first reading", is_reading(0))
        .await;
    sim.command("exception");
    let failed = poller
        .wait_for(
            Duration::from_secs(3),
            "Failed with a Modbus exception",
            failed_with(0, "Modbus exception 02"),
        )
        .await;
    eprintln!("exception event: {failed:?}");
    sim.command("normal");
    let ev = poller
        .wait_for(
            Duration::from_secs(3),
            "reading after recovery",
            is_reading(0),
        )
        .await;
    assert_eq!(reading_of(&ev), expected());
    poller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_fails_after_the_timeout_and_a_restarted_server_is_reconnected() {
    let Some(python) = python() else { return };
    let regs = register_file("silent");
    let (mut sim, port) = Sim::start(&python, &["--tcp", "127.0.0.1:0"], &regs);
    let port = port.expect("tcp port");
    let addr = format!("127.0.0.1:{port}");
    let mut poller = Poller::spawn(vec![meter("m", Some(addr), None, map(0, WordOrder::Big))]);
    poller
        .wait_for(Duration::from_secs(5), "first reading", is_reading(0))
        .await;

    // Silent: the request times out after min(poll_ms, 3000) = 200 ms.
    sim.command("silent");
    let since = Instant::now();
    poller
        .wait_for(
            Duration::from_secs(3),
            "Failed by timeout",
            failed_with(0, "no answer within 200 ms"),
        )
        .await;
    let took = since.elapsed();
    assert!(
        took >= Duration::from_millis(150) && took < Duration::from_millis(1500),
        "timeout after {took:?}"
    );
    // While down, a Failed event still arrives every poll interval.
    for _ in 0..3 {
        let ev = tokio::time::timeout(Duration::from_millis(3 * POLL_MS), poller.events.recv())
            .await
            .expect("an event every poll interval while down")
            .expect("poller alive");
        assert!(matches!(ev, MeterEvent::Failed { .. }), "{ev:?}");
    }

    // The server goes away entirely (connection refused), then comes back on the same port.
    drop(sim);
    poller
        .wait_for(
            Duration::from_secs(5),
            "Failed while the server is down",
            |ev| matches!(ev, MeterEvent::Failed { error, .. } if error.contains("connect to") || error.contains("not connected")),
        )
        .await;
    let (_sim, port2) = Sim::start(&python, &["--tcp", &format!("127.0.0.1:{port}")], &regs);
    assert_eq!(port2, Some(port));
    let since = Instant::now();
    let ev = poller
        .wait_for(
            Duration::from_secs(10),
            "reading after the restart",
            is_reading(0),
        )
        .await;
    eprintln!("reconnected after {:?}", since.elapsed());
    assert_eq!(reading_of(&ev), expected());
    poller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtu_over_a_socat_pty_pair() {
    let Some(python) = python() else { return };
    if Command::new("socat").arg("-V").output().is_err() {
        eprintln!(
            "NOTICE: socat is not installed (tests/run.sh installs it); skipping the RTU test"
        );
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("rtu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("pty dir");
    let a = dir.join("ptyA");
    let b = dir.join("ptyB");
    let socat = |a: &Path, b: &Path| {
        let child = Reaped(
            Command::new("socat")
                .arg(format!("pty,raw,echo=0,link={}", a.display()))
                .arg(format!("pty,raw,echo=0,link={}", b.display()))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start socat"),
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !(a.exists() && b.exists()) {
            assert!(
                std::time::Instant::now() < deadline,
                "socat made no PTY pair"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    };
    let pair = socat(&a, &b);
    let regs = register_file("rtu");
    let b_str = b.display().to_string();
    let (sim, _) = Sim::start(
        &python,
        &["--rtu", &b_str, "--baud", "19200", "--units", "1,2"],
        &regs,
    );
    let mut m = meter(
        "rtu",
        None,
        Some(a.display().to_string()),
        map(0, WordOrder::Big),
    );
    // Even parity: a PTY may refuse it; that must be a warning, not a failure.
    m.parity = Parity::Even;
    m.poll_ms = 500;
    // A second meter on the same RS-485 bus (unit id 2, its own poll interval): one task owns
    // the port and polls both.
    let mut m2 = m.clone();
    m2.name = "rtu2".into();
    m2.unit_id = 2;
    m2.poll_ms = 300;
    let (m_first, m2_first) = (m.clone(), m2.clone());
    let mut poller = Poller::spawn(vec![m, m2]);
    let ev = poller
        .wait_for(Duration::from_secs(10), "RTU reading", is_reading(0))
        .await;
    assert_eq!(reading_of(&ev), expected());
    let ev = poller
        .wait_for(
            Duration::from_secs(5),
            "RTU reading of meter 2",
            is_reading(1),
        )
        .await;
    assert_eq!(reading_of(&ev), expected());

    // A third meter on the bus (unit id 3) that the simulator does not answer: it fails
    // by timeout every poll while the other two keep reading on schedule.
    poller.stop().await;
    let mut m3 = m_first.clone();
    m3.name = "absent".into();
    m3.unit_id = 3;
    let mut poller = Poller::spawn(vec![m_first.clone(), m2_first.clone(), m3]);
    poller
        .wait_for(
            Duration::from_secs(5),
            "timeout of the absent unit",
            failed_with(2, "no answer within 500 ms"),
        )
        .await;
    let since = Instant::now();
    let mut good = [0usize; 2];
    while since.elapsed() < Duration::from_secs(3) {
        match tokio::time::timeout(Duration::from_secs(2), poller.events.recv()).await {
            Ok(Some(MeterEvent::Reading { meter, .. })) if meter < 2 => good[meter] += 1,
            Ok(Some(MeterEvent::Reading { meter, .. })) => {
                panic!("unit 3 answered (meter {meter})")
            }
            Ok(Some(MeterEvent::Failed { meter, error, .. })) => {
                assert_eq!(meter, 2, "meter {meter} failed: {error}")
            }
            Ok(None) | Err(_) => panic!("no events on the bus"),
        }
    }
    // 3 s at 500 ms and 300 ms, less the slots skipped while unit 3 holds the bus for its
    // 500 ms timeout: each good meter must still read most of the time.
    assert!(
        good[0] >= 3 && good[1] >= 3,
        "readings on the shared bus: {good:?}"
    );

    // The device disappears (like an unplugged USB adapter): failures, no crash; when it
    // comes back under the same name the poller reopens it.
    drop(sim);
    drop(pair);
    poller
        .wait_for(
            Duration::from_secs(5),
            "Failed while the device is gone",
            |ev| matches!(ev, MeterEvent::Failed { .. }),
        )
        .await;
    let _pair = socat(&a, &b);
    let (_sim, _) = Sim::start(&python, &["--rtu", &b_str, "--baud", "19200"], &regs);
    let ev = poller
        .wait_for(
            Duration::from_secs(15),
            "RTU reading after the device came back",
            is_reading(0),
        )
        .await;
    assert_eq!(reading_of(&ev), expected());
    poller.stop().await;
}

/// The ready-to-paste `[[meter]]` examples in docs/meters.md parse and validate.
#[test]
fn docs_meter_examples_are_valid_config() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/meters.md"))
        .expect("read docs/meters.md");
    let blocks: Vec<&str> = doc
        .split("```toml\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .collect();
    assert_eq!(blocks.len(), 2, "two TOML examples expected");
    for block in blocks {
        let config = ocpp809::config::Config::from_toml_str(block, "docs/meters.md")
            .unwrap_or_else(|e| panic!("example does not validate: {e}\n{block}"));
        assert_eq!(config.meter.len(), 1);
        assert_eq!(config.meter[0].register.len(), 4);
    }
}
