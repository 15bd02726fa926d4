//! Checks across blocks: serial devices shared by IEC 101 lines and Modbus meters, and the
//! IOA layout of CONTRACT §3 (no overlaps, every IOA addressable on every link).

use std::collections::BTreeMap;

use super::locate::Source;
use super::validate::{bad, ensure, Check};
use super::{Config, IoaBlock, CHARGER_BLOCK_LEN, MAX_IOA};

/// A serial device is opened once: IEC 101 lines need it alone, while Modbus meters may share
/// an RS-485 bus if they agree on its settings and differ in unit id.
pub(super) fn serial_devices(c: &Config) -> Check {
    for (i, line) in c.iec101.iter().enumerate() {
        if let Some(j) = c.iec101[..i].iter().position(|o| o.device == line.device) {
            let message = format!("{:?} is already used by iec101[{j}]", line.device);
            return Err(bad(format!("iec101[{i}].device"), message));
        }
    }
    for (i, meter) in c.meter.iter().enumerate() {
        let Some(device) = &meter.rtu else { continue };
        if let Some(j) = c.iec101.iter().position(|l| &l.device == device) {
            let message = format!("{device:?} is already used by iec101[{j}]");
            return Err(bad(format!("meter[{i}].rtu"), message));
        }
        let same_bus = c.meter[..i].iter().enumerate();
        for (j, other) in same_bus.filter(|(_, o)| o.rtu.as_ref() == Some(device)) {
            let (key, message) = if other.unit_id == meter.unit_id {
                let message = format!(
                    "{} is already used on {device:?} by meter[{j}]",
                    meter.unit_id
                );
                ("unit_id", message)
            } else if other.baud != meter.baud {
                let message = format!("meter[{j}] uses {device:?} at {} baud", other.baud);
                ("baud", message)
            } else if other.parity != meter.parity {
                let parity = format!("{:?}", other.parity).to_lowercase();
                (
                    "parity",
                    format!("meter[{j}] uses {device:?} with parity {parity}"),
                )
            } else {
                continue;
            };
            return Err(bad(format!("meter[{i}].{key}"), message));
        }
    }
    Ok(())
}

/// CONTRACT §3: blocks must not overlap and must be addressable on every link.
pub(super) fn ioa_layout(c: &Config, source: &Source) -> Check {
    let blocks = c.ioa_blocks();
    for b in &blocks {
        let last = b.range.end - 1;
        let message = "IOA 0 means \"irrelevant\" in IEC 60870-5-101 §7.2.5 and is never a point";
        ensure(b.range.start >= 1, &b.key, message)?;
        let message = format!(
            "{} needs IOAs up to {last}, beyond the 3-octet maximum {MAX_IOA}",
            b.owner
        );
        ensure(last <= MAX_IOA, &b.key, message)?;
    }
    for (i, line) in c.iec101.iter().enumerate() {
        let max = match line.ioa_size {
            1 => 255,
            2 => 65535,
            _ => MAX_IOA,
        };
        let key = format!("iec101[{i}].ioa_size");
        let fits = |what: &str, last: u32| {
            let message = format!(
                "{} octet(s) address IOAs up to {max}, but {what} uses IOAs up to {last}",
                line.ioa_size
            );
            ensure(last <= max, &key, message)
        };
        for b in &blocks {
            fits(&b.owner, b.range.end - 1)?;
        }
        if c.ocpp.accept_unknown {
            let last = c.ocpp.auto_ioa_base + CHARGER_BLOCK_LEN - 1;
            fits(
                "the first block for unknown chargers (ocpp.auto_ioa_base)",
                last,
            )?;
        }
    }
    // Report an overlap at the block that comes later in the file: that is usually the one
    // just added. A block whose key is left at its default (the site) counts as first.
    let mut in_file_order: Vec<_> = blocks.iter().collect();
    in_file_order.sort_by_key(|b| source.key_offset(&b.key));
    let mut placed: BTreeMap<u32, &IoaBlock> = BTreeMap::new();
    for b in in_file_order {
        // Placed blocks are disjoint, so only the one starting last below `b`'s end can overlap.
        if let Some((_, other)) = placed.range(..b.range.end).next_back() {
            if other.range.end > b.range.start {
                let message = format!(
                    "{} (IOAs {}..={}) overlaps {} (IOAs {}..={}, {})",
                    b.owner,
                    b.range.start,
                    b.range.end - 1,
                    other.owner,
                    other.range.start,
                    other.range.end - 1,
                    source.describe(&other.key)
                );
                return Err(bad(&b.key, message));
            }
        }
        placed.insert(b.range.start, b);
    }
    Ok(())
}
