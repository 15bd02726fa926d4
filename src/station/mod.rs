//! The station application (IEC 60870-5-101 §7.4 application functions, as used by
//! IEC 60870-5-104 §7): one process image served to every link session — each IEC 104
//! connection and each IEC 101 line — with spontaneous transmission, station and counter
//! interrogation, read, clock synchronisation, test and reset-process commands, and process
//! commands with select-before-operate.
//!
//! Sans-IO: the link drivers feed received ASDUs and activation changes in and poll encoded
//! ASDUs out; the application feeds point updates and command outcomes in. Nothing here
//! blocks, sleeps or reads a clock. See `docs/iec104.md` for the behaviour towards masters.

pub mod command;
pub mod handle;
pub mod image;
pub mod interrogation;
pub mod point;
pub mod queue;
mod session;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tracing::{debug, warn};

use crate::asdu::{
    self, Asdu, AsduParams, Cause, Cot, Freeze, Header, InformationObject, Qoi, Quality, TypeId,
    Value,
};
use command::{command_element, Selection};
pub use command::{CommandAction, CommandId, CommandOutcome, CommandRequest, SessionId};
pub use handle::StationHandle;
use image::{ProcessImage, UpdateEffect};
use interrogation::{Interrogation, InterrogationKind};
pub use point::{MonitorKind, PointKind, PointSpec, PointUpdate, PointValue};
use queue::{BoundedFifo, Outgoing, Spontaneous};
use session::Session;

/// Which active connections receive data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Redundancy {
    /// Every connection with data transfer started gets everything.
    PerConnection,
    /// IEC 60870-5-104 Ed.2 redundancy group: only the connection that started data
    /// transfer last is served; the others stand by.
    SingleGroup,
}

#[derive(Clone, Copy, Debug)]
pub struct StationConfig {
    /// GI and counter interrogation answers use the CP56 types (30–37) instead of 1–15.
    pub gi_with_time: bool,
    pub select_timeout: Duration,
    /// Bound of each event queue and of the standby buffer.
    pub event_capacity: usize,
    pub redundancy: Redundancy,
    /// Commands of one session awaiting the application's outcome.
    pub max_pending_commands: usize,
}

impl Default for StationConfig {
    fn default() -> StationConfig {
        StationConfig {
            gi_with_time: true,
            select_timeout: Duration::from_secs(10),
            event_capacity: 10_000,
            redundancy: Redundancy::PerConnection,
            max_pending_commands: 64,
        }
    }
}

/// The two data classes of an IEC 60870-5-101 line (IEC 60870-5-101 §7.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataClass {
    Class1,
    Class2,
}

/// How a link presents the station.
#[derive(Clone, Debug)]
pub struct LinkProfile {
    pub params: AsduParams,
    pub common_address: u16,
    pub max_asdu_len: usize,
    /// For logs: "104 127.0.0.1:50122", "101 /dev/ttyS1".
    pub name: String,
}

/// Something the application must act on.
#[derive(Clone, Debug, PartialEq)]
pub enum ToApplication {
    Command(CommandRequest),
    /// C_CS_NA_1 received: the master's notion of UTC.
    ClockSync {
        session: SessionId,
        time: Option<DateTime<Utc>>,
    },
    /// C_RP_NA_1 with QRP 1 (general reset of the process).
    ResetProcess {
        session: SessionId,
    },
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StationStats {
    pub events_dropped: u64,
    pub malformed_asdus: u64,
    pub negative_confirmations: u64,
    pub commands: u64,
}

#[derive(Clone, Debug)]
enum Pending {
    Operate { session: SessionId, asdu: Asdu },
    Read { session: SessionId, ioa: u32 },
}

pub struct Station {
    config: StationConfig,
    image: ProcessImage,
    sessions: BTreeMap<SessionId, Session>,
    next_session: SessionId,
    /// Events kept while no session is active, delivered to the next one in order.
    standby: BoundedFifo<Spontaneous>,
    pending: HashMap<CommandId, Pending>,
    next_command: CommandId,
    activations: u64,
    wakeups: BTreeSet<SessionId>,
    stats: StationStats,
}

impl Station {
    pub fn new(config: StationConfig) -> Station {
        let mut standby = BoundedFifo::new(config.event_capacity);
        // End of initialisation (§7.4.1) reaches the first master that starts data transfer.
        standby.push(Spontaneous {
            type_id: TypeId::M_EI_NA_1,
            cause: Cause::INITIALIZED,
            object: InformationObject {
                address: 0,
                value: Value::EndOfInitialization {
                    cause: 0,
                    after_parameter_change: false,
                },
                time: None,
            },
        });
        Station {
            config,
            image: ProcessImage::new(),
            sessions: BTreeMap::new(),
            next_session: 1,
            standby,
            pending: HashMap::new(),
            next_command: 1,
            activations: 0,
            wakeups: BTreeSet::new(),
            stats: StationStats::default(),
        }
    }

    pub fn config(&self) -> &StationConfig {
        &self.config
    }

    pub fn image(&self) -> &ProcessImage {
        &self.image
    }

    pub fn stats(&self) -> StationStats {
        let queued_drops: u64 = self
            .sessions
            .values()
            .map(|s| s.queue.events.dropped())
            .sum();
        StationStats {
            events_dropped: self.stats.events_dropped + queued_drops + self.standby.dropped(),
            ..self.stats
        }
    }

    /// Spontaneous objects (events and measurements) waiting for transmission in the
    /// sessions' queues and the standby buffer. Lets a producer apply backpressure, e.g.
    /// the load source of `examples/iec104_source.rs`.
    pub fn queued(&self) -> usize {
        let sessions: usize = self
            .sessions
            .values()
            .map(|s| s.queue.events.len() + s.queue.measurements.len())
            .sum();
        sessions + self.standby.len()
    }

    /// Adds points; the new ones are sent spontaneously (with IV until they get a value)
    /// so that masters learn of them without a new GI.
    pub fn add_points(
        &mut self,
        specs: impl IntoIterator<Item = PointSpec>,
        announce_at: Option<DateTime<Utc>>,
    ) -> Result<(), image::ImageError> {
        for spec in specs {
            let ioa = spec.ioa;
            self.image.insert(spec)?;
            if let Some(now) = announce_at {
                self.transmit_spontaneous(ioa, now);
            }
        }
        Ok(())
    }

    /// True while any session has data transfer active (SCADA present).
    pub fn any_active(&self) -> bool {
        self.sessions.values().any(|s| s.active)
    }

    pub fn active_sessions(&self) -> usize {
        self.sessions.values().filter(|s| s.active).count()
    }

    pub fn open_session(&mut self, profile: LinkProfile) -> SessionId {
        let id = self.next_session;
        self.next_session += 1;
        self.sessions
            .insert(id, Session::new(profile, self.config.event_capacity));
        id
    }

    /// The link closed. `unacknowledged` are ASDUs sent but never acknowledged; their
    /// events go back to the standby buffer when no other master is active, so a
    /// reconnecting master still receives them (IEC 60870-5-104 Ed.2 §5.5).
    pub fn close_session(&mut self, id: SessionId, unacknowledged: Vec<Vec<u8>>) {
        let Some(mut session) = self.sessions.remove(&id) else {
            return;
        };
        self.pending.retain(|_, p| match p {
            Pending::Operate { session, .. } | Pending::Read { session, .. } => *session != id,
        });
        if session.active && !self.any_active() {
            let params = session.profile.params;
            let mut rescued: Vec<Spontaneous> = unacknowledged
                .iter()
                .filter_map(|raw| Asdu::decode(raw, params).ok())
                .filter(|asdu| {
                    asdu.cot.cause == Cause::SPONTANEOUS || asdu.cot.cause == Cause::INITIALIZED
                })
                .flat_map(|asdu| {
                    let (type_id, cause) = (asdu.type_id, asdu.cot.cause);
                    asdu.objects.into_iter().map(move |object| Spontaneous {
                        type_id,
                        cause,
                        object,
                    })
                })
                .filter(|s| s.cause == Cause::INITIALIZED || is_event_type(s.type_id))
                .collect();
            rescued.extend(session.queue.events.drain());
            self.requeue_to_standby(rescued);
        }
    }

    /// STARTDT confirmed (`true`) or STOPDT confirmed (`false`) on a session.
    pub fn set_active(&mut self, id: SessionId, active: bool) {
        if !self.sessions.contains_key(&id) {
            return;
        }
        if active {
            self.activations += 1;
            let order = self.activations;
            let mut handed_over = Vec::new();
            if self.config.redundancy == Redundancy::SingleGroup {
                for (other_id, other) in self.sessions.iter_mut() {
                    if *other_id != id && other.active {
                        other.active = false;
                        handed_over.extend(other.queue.events.drain());
                        other.queue.measurements.clear();
                    }
                }
            }
            let standby: Vec<Spontaneous> = self.standby.drain().collect();
            if let Some(session) = self.sessions.get_mut(&id) {
                session.active = true;
                session.activation_order = order;
                for event in standby.into_iter().chain(handed_over) {
                    session.queue.events.push(event);
                }
            }
            self.wakeups.insert(id);
        } else {
            let mut leftover = Vec::new();
            if let Some(session) = self.sessions.get_mut(&id) {
                session.active = false;
                session.interrogations.clear();
                leftover.extend(session.queue.events.drain());
                session.queue.measurements.clear();
            }
            if !self.any_active() {
                self.requeue_to_standby(leftover);
            }
        }
    }

    fn requeue_to_standby(&mut self, older: Vec<Spontaneous>) {
        if older.is_empty() {
            return;
        }
        let newer: Vec<Spontaneous> = self.standby.drain().collect();
        for event in older.into_iter().chain(newer) {
            self.standby.push(event);
        }
    }

    /// Sessions that got something to send since the last call.
    pub fn take_wakeups(&mut self) -> Vec<SessionId> {
        std::mem::take(&mut self.wakeups).into_iter().collect()
    }

    /// Applies an update from the application and transmits it spontaneously (COT 3,
    /// CP56Time2a) when a master could see the difference.
    pub fn update(&mut self, update: &PointUpdate) -> Result<(), image::ImageError> {
        if self.image.apply(update)? == UpdateEffect::Changed {
            self.transmit_spontaneous(update.ioa, update.time);
        }
        Ok(())
    }

    fn transmit_spontaneous(&mut self, ioa: u32, now: DateTime<Utc>) {
        let Some(entry) = self.image.get(ioa) else {
            return;
        };
        let Some(kind) = entry.monitor_kind() else {
            return;
        };
        let Some(object) = self.image.object(entry, true, false, now) else {
            return;
        };
        let item = Spontaneous {
            type_id: kind.type_with_time(),
            cause: Cause::SPONTANEOUS,
            object,
        };
        let receivers: Vec<SessionId> = match self.config.redundancy {
            Redundancy::PerConnection => self
                .sessions
                .iter()
                .filter(|(_, s)| s.active)
                .map(|(id, _)| *id)
                .collect(),
            Redundancy::SingleGroup => self
                .sessions
                .iter()
                .filter(|(_, s)| s.active)
                .max_by_key(|(_, s)| s.activation_order)
                .map(|(id, _)| vec![*id])
                .unwrap_or_default(),
        };
        if receivers.is_empty() {
            // Measurements are not kept: the GI after reconnection delivers their state.
            if kind.is_event() && self.standby.push(item) {
                log_event_drop("no master active", self.standby.dropped());
            }
            return;
        }
        for id in receivers {
            if let Some(session) = self.sessions.get_mut(&id) {
                if kind.is_event() {
                    if session.queue.events.push(item) {
                        log_event_drop(&session.profile.name, session.queue.events.dropped());
                    }
                } else {
                    session.queue.measurements.push(item);
                }
                self.wakeups.insert(id);
            }
        }
    }

    /// Next encoded ASDU for `id`, by priority: responses, events, interrogation,
    /// measurements.
    pub fn poll_asdu(&mut self, id: SessionId, now: DateTime<Utc>) -> Option<Vec<u8>> {
        self.poll_with(id, |session, image, with_time| {
            session.next_outgoing(image, with_time, now)
        })
    }

    /// Whether class 1 data waits for `id` (IEC 60870-5-101: the ACD bit).
    pub fn class1_pending(&self, id: SessionId) -> bool {
        self.sessions.get(&id).is_some_and(Session::class1_pending)
    }

    /// Next encoded ASDU of one class for an IEC 60870-5-101 line: class 1 carries
    /// responses, events and interrogation answers, class 2 the measured values (CONTRACT §2).
    pub fn poll_class(
        &mut self,
        id: SessionId,
        class: DataClass,
        now: DateTime<Utc>,
    ) -> Option<Vec<u8>> {
        self.poll_with(id, |session, image, with_time| match class {
            DataClass::Class1 => session.next_class1(image, with_time, now),
            DataClass::Class2 => session.next_class2(),
        })
    }

    fn poll_with(
        &mut self,
        id: SessionId,
        mut next: impl FnMut(&mut Session, &ProcessImage, bool) -> Option<queue::Outgoing>,
    ) -> Option<Vec<u8>> {
        let with_time = self.config.gi_with_time;
        let session = self.sessions.get_mut(&id)?;
        loop {
            let outgoing = next(session, &self.image, with_time)?;
            match session.encode(outgoing) {
                Ok(bytes) => return Some(bytes),
                Err(error) => {
                    warn!(session = %session.profile.name, %error, "dropping an ASDU that cannot be encoded");
                }
            }
        }
    }

    /// A polled link (IEC 101) heard from its master: SCADA presence of such a link is
    /// judged by how recently it was polled, not by data transfer being active.
    pub fn note_polled(&mut self, id: SessionId, now: Instant) {
        if let Some(session) = self.sessions.get_mut(&id) {
            session.polled_at = Some(now);
        }
    }

    /// SCADA presence for the failsafe (CONTRACT §7): a data-transfer link (IEC 104) with
    /// STARTDT active, or a polled link (IEC 101) heard within `poll_window`.
    pub fn scada_present(&self, now: Instant, poll_window: Duration) -> bool {
        self.sessions.values().any(|s| match s.polled_at {
            Some(at) => now.saturating_duration_since(at) <= poll_window,
            None => s.active,
        })
    }

    /// Handles one ASDU received from the master on `id`.
    pub fn handle_asdu(
        &mut self,
        id: SessionId,
        now: Instant,
        raw: &[u8],
    ) -> Option<ToApplication> {
        let session = self.sessions.get_mut(&id)?;
        let params = session.profile.params;
        let header = match Header::decode(raw, params) {
            Ok(header) => header,
            Err(error) => {
                self.stats.malformed_asdus += 1;
                warn!(session = %session.profile.name, %error, "unreadable ASDU ignored");
                return None;
            }
        };
        let asdu = match header.type_id().map(|_| Asdu::decode(raw, params)) {
            Some(Ok(asdu)) => asdu,
            Some(Err(error)) => {
                self.stats.malformed_asdus += 1;
                warn!(session = %session.profile.name, type_id = header.type_id, %error, "malformed ASDU answered as unknown type");
                return self.reject_raw(id, raw, Cause::UNKNOWN_TYPE);
            }
            None => {
                debug!(session = %session.profile.name, type_id = header.type_id, "unknown type");
                return self.reject_raw(id, raw, Cause::UNKNOWN_TYPE);
            }
        };
        let type_id = asdu.type_id;
        // A process command type no point of this station accepts is an unknown type
        // (COT 44); a served type at the wrong address is an unknown IOA (COT 47).
        let served = is_system_command(type_id)
            || (type_id.is_command() && self.image.serves_command(type_id.without_time()));
        if !served {
            return self.reject_raw(id, raw, Cause::UNKNOWN_TYPE);
        }
        if !session.addresses_me(asdu.common_address, type_id) {
            return self.reject_raw(id, raw, Cause::UNKNOWN_CA);
        }
        let cause = asdu.cot.cause;
        let allowed = match type_id {
            TypeId::C_RD_NA_1 => cause == Cause::REQUEST,
            TypeId::C_IC_NA_1 => cause == Cause::ACTIVATION || cause == Cause::DEACTIVATION,
            TypeId::C_CI_NA_1 | TypeId::C_CS_NA_1 | TypeId::C_TS_TA_1 | TypeId::C_RP_NA_1 => {
                cause == Cause::ACTIVATION
            }
            _ => cause == Cause::ACTIVATION || cause == Cause::DEACTIVATION,
        };
        if !allowed {
            return self.reject_raw(id, raw, Cause::UNKNOWN_CAUSE);
        }
        let Some(object) = single_object(&asdu) else {
            return self.confirm(id, asdu, false);
        };
        if is_system_command(type_id) && type_id != TypeId::C_RD_NA_1 && object.address != 0 {
            return self.reject_raw(id, raw, Cause::UNKNOWN_IOA);
        }
        match (type_id, object.value) {
            (TypeId::C_IC_NA_1, Value::Interrogation(qoi)) => self.interrogate(id, asdu, qoi),
            (TypeId::C_CI_NA_1, Value::CounterInterrogation(qcc)) => {
                self.counter_interrogate(id, asdu, qcc)
            }
            (TypeId::C_RD_NA_1, _) => self.read(id, asdu, raw, object.address),
            (TypeId::C_CS_NA_1, Value::ClockSync(time)) => {
                self.confirm(id, asdu, true);
                Some(ToApplication::ClockSync {
                    session: id,
                    time: time.to_datetime(),
                })
            }
            (TypeId::C_TS_TA_1, _) => self.confirm(id, asdu, true),
            (TypeId::C_RP_NA_1, Value::ResetProcess { qrp }) => self.reset_process(id, asdu, qrp),
            _ => self.process_command(id, now, asdu, raw, object),
        }
    }

    fn interrogate(&mut self, id: SessionId, asdu: Asdu, qoi: Qoi) -> Option<ToApplication> {
        let group = qoi.group();
        if qoi != Qoi::STATION && group.is_none() {
            return self.confirm(id, asdu, false);
        }
        let session = self.sessions.get_mut(&id)?;
        if asdu.cot.cause == Cause::DEACTIVATION {
            let before = session.interrogations.len();
            session
                .interrogations
                .retain(|i| !matches!(i.kind, InterrogationKind::General { .. }));
            let cancelled = session.interrogations.len() != before;
            return self.deactivation_confirm(id, asdu, cancelled);
        }
        if session.interrogations.len() >= MAX_QUEUED_INTERROGATIONS {
            return self.confirm(id, asdu, false);
        }
        session.interrogations.push_back(Interrogation::new(
            InterrogationKind::General { group },
            asdu.clone(),
        ));
        self.confirm(id, asdu, true)
    }

    fn counter_interrogate(
        &mut self,
        id: SessionId,
        asdu: Asdu,
        qcc: asdu::Qcc,
    ) -> Option<ToApplication> {
        let group = match qcc.request {
            5 => None,
            g @ 1..=4 => Some(g),
            _ => return self.confirm(id, asdu, false),
        };
        let frozen = match qcc.freeze {
            Freeze::Read => false,
            // Meter readings are never reset by SCADA: freeze-and-reset acts as freeze, a
            // bare reset is refused rather than pretended.
            Freeze::Freeze | Freeze::FreezeAndReset => true,
            Freeze::Reset => return self.confirm(id, asdu, false),
        };
        if self.sessions.get(&id)?.interrogations.len() >= MAX_QUEUED_INTERROGATIONS {
            return self.confirm(id, asdu, false);
        }
        if frozen {
            self.image.freeze_counters(group);
        }
        let session = self.sessions.get_mut(&id)?;
        session.interrogations.push_back(Interrogation::new(
            InterrogationKind::Counter { group, frozen },
            asdu.clone(),
        ));
        self.confirm(id, asdu, true)
    }

    fn read(&mut self, id: SessionId, asdu: Asdu, raw: &[u8], ioa: u32) -> Option<ToApplication> {
        let Some(entry) = self.image.get(ioa) else {
            return self.reject_raw(id, raw, Cause::UNKNOWN_IOA);
        };
        if entry.monitor_kind().is_none() {
            return self.reject_raw(id, raw, Cause::UNKNOWN_IOA);
        }
        if entry.spec.read_through {
            if !self.has_room_for_command(id) {
                return self.answer_read(id, ioa, true);
            }
            let request = self.register(
                Pending::Read { session: id, ioa },
                CommandRequest {
                    id: 0,
                    session: id,
                    ioa,
                    type_id: asdu.type_id,
                    action: CommandAction::Read,
                    selected: false,
                },
            );
            return Some(ToApplication::Command(request));
        }
        self.answer_read(id, ioa, false)
    }

    /// Answers a read with COT 5; `stale` marks the cached value NT (refresh failed).
    fn answer_read(&mut self, id: SessionId, ioa: u32, stale: bool) -> Option<ToApplication> {
        let with_time = self.config.gi_with_time;
        let entry = self.image.get(ioa)?;
        let kind = entry.monitor_kind()?;
        let mut object = self.image.object(entry, with_time, false, Utc::now())?;
        if stale {
            object.value = with_not_topical(object.value);
        }
        let type_id = if with_time {
            kind.type_with_time()
        } else {
            kind.type_plain()
        };
        let mut answer = Asdu::new(type_id, Cot::new(Cause::REQUEST), 0);
        answer.objects.push(object);
        self.respond(id, Outgoing::Asdu(answer));
        None
    }

    fn reset_process(&mut self, id: SessionId, asdu: Asdu, qrp: u8) -> Option<ToApplication> {
        match qrp {
            1 => {
                self.confirm(id, asdu, true);
                if let Some(session) = self.sessions.get_mut(&id) {
                    session.queue.events.clear();
                    session.queue.measurements.clear();
                    session.interrogations.clear();
                    session.selection = None;
                }
                Some(ToApplication::ResetProcess { session: id })
            }
            2 => {
                // Reset of pending information with time tag: drop what is queued.
                if let Some(session) = self.sessions.get_mut(&id) {
                    session.queue.events.retain(|e| e.object.time.is_none());
                    session.queue.measurements.clear();
                }
                self.confirm(id, asdu, true)
            }
            _ => self.confirm(id, asdu, false),
        }
    }

    fn process_command(
        &mut self,
        id: SessionId,
        now: Instant,
        asdu: Asdu,
        raw: &[u8],
        object: InformationObject,
    ) -> Option<ToApplication> {
        let ioa = object.address;
        let type_id = asdu.type_id;
        let matches_point = self
            .image
            .get(ioa)
            .is_some_and(|entry| entry.spec.kind == PointKind::Command(type_id.without_time()));
        if !matches_point {
            return self.reject_raw(id, raw, Cause::UNKNOWN_IOA);
        }
        let Some(element) = command_element(&object.value) else {
            return self.confirm(id, asdu, false);
        };
        let select_timeout = self.config.select_timeout;
        let session = self.sessions.get_mut(&id)?;
        if asdu.cot.cause == Cause::DEACTIVATION {
            let cancelled = session.selection.is_some_and(|s| s.ioa == ioa);
            if cancelled {
                session.selection = None;
            }
            return self.deactivation_confirm(id, asdu, cancelled);
        }
        if element.select {
            // A select is always allowed; whether it was needed is the application's call.
            session.selection = Some(Selection::new(
                ioa,
                type_id,
                element.action,
                now,
                select_timeout,
            ));
            return self.confirm(id, asdu, true);
        }
        let selected = match session.selection {
            Some(selection) if selection.ioa == ioa => {
                session.selection = None;
                if !selection.matches(ioa, type_id, &element.action, now) {
                    debug!(session = %session.profile.name, ioa, "execute does not repeat its select in time");
                    return self.confirm(id, asdu, false);
                }
                true
            }
            _ => false,
        };
        if !self.has_room_for_command(id) {
            return self.confirm(id, asdu, false);
        }
        self.stats.commands += 1;
        let request = CommandRequest {
            id: 0,
            session: id,
            ioa,
            type_id,
            action: element.action,
            selected,
        };
        let request = self.register(Pending::Operate { session: id, asdu }, request);
        Some(ToApplication::Command(request))
    }

    fn has_room_for_command(&self, id: SessionId) -> bool {
        let in_flight = self
            .pending
            .values()
            .filter(|p| match p {
                Pending::Operate { session, .. } | Pending::Read { session, .. } => *session == id,
            })
            .count();
        in_flight < self.config.max_pending_commands
    }

    fn register(&mut self, pending: Pending, mut request: CommandRequest) -> CommandRequest {
        let command_id = self.next_command;
        self.next_command += 1;
        self.pending.insert(command_id, pending);
        request.id = command_id;
        request
    }

    /// The application's verdict on a command handed out by [`Station::handle_asdu`].
    pub fn complete_command(&mut self, command: CommandId, outcome: &CommandOutcome) {
        let Some(pending) = self.pending.remove(&command) else {
            return;
        };
        match pending {
            Pending::Operate { session, asdu } => {
                let accepted = *outcome == CommandOutcome::Accepted;
                self.confirm(session, asdu.clone(), accepted);
                if accepted {
                    let mut termination = asdu;
                    termination.cot = Cot {
                        cause: Cause::ACTIVATION_TERMINATION,
                        negative: false,
                        ..termination.cot
                    };
                    self.respond(session, Outgoing::Asdu(termination));
                }
            }
            Pending::Read { session, ioa } => {
                let stale = *outcome != CommandOutcome::Accepted;
                self.answer_read(session, ioa, stale);
            }
        }
    }

    /// Activation confirmation (COT 7), positive or negative, mirroring the request.
    fn confirm(&mut self, id: SessionId, mut asdu: Asdu, positive: bool) -> Option<ToApplication> {
        asdu.cot = Cot {
            cause: Cause::ACTIVATION_CON,
            negative: !positive,
            ..asdu.cot
        };
        if !positive {
            self.stats.negative_confirmations += 1;
        }
        self.respond(id, Outgoing::Asdu(asdu));
        None
    }

    fn deactivation_confirm(
        &mut self,
        id: SessionId,
        mut asdu: Asdu,
        positive: bool,
    ) -> Option<ToApplication> {
        asdu.cot = Cot {
            cause: Cause::DEACTIVATION_CON,
            negative: !positive,
            ..asdu.cot
        };
        self.respond(id, Outgoing::Asdu(asdu));
        None
    }

    fn reject_raw(&mut self, id: SessionId, raw: &[u8], cause: Cause) -> Option<ToApplication> {
        self.stats.negative_confirmations += 1;
        let params = self.sessions.get(&id)?.profile.params;
        if let Some(mirrored) = asdu::mirror(raw, params, cause, true) {
            self.respond(id, Outgoing::Raw(mirrored));
        }
        None
    }

    fn respond(&mut self, id: SessionId, outgoing: Outgoing) {
        if let Some(session) = self.sessions.get_mut(&id) {
            session.queue.responses.push_back(outgoing);
            self.wakeups.insert(id);
        }
    }
}

/// Logs the first dropped event and every 1000th after it, so a full buffer is visible
/// without flooding the journal.
fn log_event_drop(queue: &str, dropped: u64) {
    if dropped == 1 || dropped.is_multiple_of(1000) {
        warn!(queue, dropped, "event buffer full: oldest events dropped");
    }
}

/// Interrogations a session may have queued at once; a master asking for more is refused.
const MAX_QUEUED_INTERROGATIONS: usize = 4;

fn is_system_command(type_id: TypeId) -> bool {
    matches!(
        type_id,
        TypeId::C_IC_NA_1
            | TypeId::C_CI_NA_1
            | TypeId::C_RD_NA_1
            | TypeId::C_CS_NA_1
            | TypeId::C_TS_TA_1
            | TypeId::C_RP_NA_1
    )
}

fn is_event_type(type_id: TypeId) -> bool {
    matches!(
        type_id.without_time(),
        TypeId::M_SP_NA_1 | TypeId::M_DP_NA_1 | TypeId::M_ST_NA_1 | TypeId::M_BO_NA_1
    ) || type_id == TypeId::M_EI_NA_1
}

/// Commands and system requests carry exactly one object.
fn single_object(asdu: &Asdu) -> Option<InformationObject> {
    match asdu.objects.as_slice() {
        [object] => Some(*object),
        _ => None,
    }
}

fn with_not_topical(value: Value) -> Value {
    let stale = |q: Quality| Quality {
        not_topical: true,
        ..q
    };
    match value {
        Value::SinglePoint { on, quality } => Value::SinglePoint {
            on,
            quality: stale(quality),
        },
        Value::DoublePoint { value, quality } => Value::DoublePoint {
            value,
            quality: stale(quality),
        },
        Value::StepPosition {
            value,
            transient,
            quality,
        } => Value::StepPosition {
            value,
            transient,
            quality: stale(quality),
        },
        Value::Bitstring { bits, quality } => Value::Bitstring {
            bits,
            quality: stale(quality),
        },
        Value::Normalized { value, quality } => Value::Normalized {
            value,
            quality: stale(quality),
        },
        Value::Scaled { value, quality } => Value::Scaled {
            value,
            quality: stale(quality),
        },
        Value::ShortFloat { value, quality } => Value::ShortFloat {
            value,
            quality: stale(quality),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests;
