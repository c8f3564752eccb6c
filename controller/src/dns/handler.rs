//! One DNS request → one response: decode, parse the name, look up, build, encode within the size
//! the transport allows. Synchronous and free of sockets, so the fuzzer and tests call it directly.

use std::sync::Arc;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::Record;
use rand::seq::SliceRandom;

use super::config::DnsConfig;
use super::lookup::{Found, lookup};
use super::name::{Parsed, Question, parse};
use super::records::{Reply, Zone, build};
use super::recursor;
use super::remote::{FactsRequest, FactsSource};
use crate::catalog::Catalog;

/// The largest UDP response census sends, whatever a client's EDNS buffer says.
pub const MAX_UDP_PAYLOAD: u16 = 4096;
/// Without EDNS, a UDP response fits in 512 bytes (RFC 1035).
const CLASSIC_UDP_PAYLOAD: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// The name is outside census' zones and recursors are configured: pass the request on.
    Forward,
    /// The facts live on the servers (a client agent): `Responder::answer` asks them.
    Ask(Pending),
    /// Not a request at all (a response, or too short to carry an ID): say nothing.
    Drop,
}

/// A request whose facts must be fetched from a server before it can be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    packet: Vec<u8>,
    question: Question,
    domain: String,
}

/// Where the facts come from: this server's catalog, or a server (on a client agent).
pub enum FactsFrom {
    Catalog(Arc<Catalog>),
    Servers(Arc<dyn FactsSource>),
}

/// Answers DNS requests.
pub struct Responder {
    config: Arc<DnsConfig>,
    facts: FactsFrom,
    /// With ACLs on, answers are what the agent's default token may read.
    acl: Option<Arc<crate::acl::Acl>>,
}

impl Responder {
    pub fn new(config: Arc<DnsConfig>, catalog: Arc<Catalog>) -> Responder {
        Responder { config, facts: FactsFrom::Catalog(catalog), acl: None }
    }

    /// Filters answers by the agent's default token when ACLs are on.
    pub fn with_acl(mut self, acl: Arc<crate::acl::Acl>) -> Responder {
        self.acl = acl.enabled().then_some(acl);
        self
    }

    /// A client agent's responder: facts from the servers, records by this agent's config.
    pub fn asking(config: Arc<DnsConfig>, servers: Arc<dyn FactsSource>) -> Responder {
        Responder { config, facts: FactsFrom::Servers(servers), acl: None }
    }

    pub fn config(&self) -> &DnsConfig {
        &self.config
    }

    pub fn respond(&self, packet: &[u8], transport: Transport) -> Outcome {
        let request = match Message::from_vec(packet) {
            Ok(m) => m,
            Err(_) => return format_error(packet),
        };
        if request.message_type() != MessageType::Query {
            return Outcome::Drop;
        }
        let mut response = self.response_to(&request);
        if request.op_code() != OpCode::Query {
            response.set_response_code(ResponseCode::NotImp);
            return Outcome::Reply(encode(response, transport, &request));
        }
        let [query] = request.queries() else {
            response.set_response_code(ResponseCode::FormErr);
            return Outcome::Reply(encode(response, transport, &request));
        };
        let name = query.name().to_ascii();
        let (question, domain) = match parse(&name, &self.config.domains) {
            Parsed::Inside { question, domain } => (question, domain),
            Parsed::Reverse(ip) => (Question::Reverse(ip), self.config.domains.primary.clone()),
            Parsed::Outside if self.config.recursors.is_empty() => {
                response.set_response_code(ResponseCode::Refused);
                return Outcome::Reply(encode(response, transport, &request));
            }
            Parsed::Outside => return Outcome::Forward,
        };
        match &self.facts {
            FactsFrom::Catalog(catalog) => {
                let (found, index) = catalog.read(|state| {
                    let found = lookup(state, &question, &self.config.datacenter, self.config.only_passing);
                    (found, state.last_index())
                });
                let found = match &self.acl {
                    None => found,
                    Some(acl) => match acl.resolve_local("") {
                        Ok(identity) => super::acl_filter::visible(found, &identity.authorizer),
                        Err(_) => super::lookup::Found::Nothing,
                    },
                };
                self.finish(&request, &question, &domain, found, index, transport)
            }
            FactsFrom::Servers(_) => Outcome::Ask(Pending { packet: packet.to_vec(), question, domain }),
        }
    }

    /// Answers a request whose facts live on the servers; a server failure is SERVFAIL.
    pub async fn answer(&self, pending: Pending, transport: Transport) -> Vec<u8> {
        let Ok(request) = Message::from_vec(&pending.packet) else { return Vec::new() };
        let FactsFrom::Servers(servers) = &self.facts else { return Vec::new() };
        let asked = FactsRequest::new(pending.question.clone(), &self.config);
        let outcome = match servers.facts(asked).await {
            Ok(facts) => {
                let found = match &self.acl {
                    None => facts.found,
                    Some(acl) => match acl.resolve("").await {
                        Ok(identity) => super::acl_filter::visible(facts.found, &identity.authorizer),
                        Err(_) => super::lookup::Found::Nothing,
                    },
                };
                self.finish(&request, &pending.question, &pending.domain, found, facts.index, transport)
            }
            Err(e) => {
                tracing::warn!(target: "dns", error = %e, "lookup failed");
                return server_failure(&self.response_to(&request));
            }
        };
        match outcome {
            Outcome::Reply(bytes) => bytes,
            Outcome::Forward => recursor::forward(&pending.packet, &self.config, transport).await,
            Outcome::Ask(_) | Outcome::Drop => Vec::new(),
        }
    }

    /// Builds the response to `request` from what the catalog knows.
    fn finish(
        &self,
        request: &Message,
        question: &Question,
        domain: &str,
        mut found: Found,
        index: u64,
        transport: Transport,
    ) -> Outcome {
        let reverse = matches!(question, Question::Reverse(_));
        if reverse && found == Found::Nothing && !self.config.recursors.is_empty() {
            return Outcome::Forward;
        }
        let Some(query) = request.queries().first() else { return Outcome::Drop };
        if let Found::Service { instances, .. } = &mut found {
            instances.shuffle(&mut rand::thread_rng());
        }
        let serial = (index as u32).max(1);
        let zone = Zone { domain, config: &self.config, serial };
        let reply = build(&found, query.name(), query.query_type(), &zone);
        let mut response = self.response_to(request);
        response.set_authoritative(!reverse);
        fill(&mut response, reply, transport, self.config.udp_answer_limit);
        Outcome::Reply(encode(response, transport, request))
    }

    fn response_to(&self, request: &Message) -> Message {
        let mut response = response_to(request);
        response.set_recursion_available(!self.config.recursors.is_empty());
        response
    }
}

/// A FORMERR for a request that does not decode, if it at least carries an ID and is not a response.
fn format_error(packet: &[u8]) -> Outcome {
    let (Some(id), Some(flags)) = (packet.get(..2), packet.get(2)) else { return Outcome::Drop };
    if flags & 0x80 != 0 {
        return Outcome::Drop;
    }
    let id = u16::from_be_bytes([id[0], id[1]]);
    let message = Message::error_msg(id, OpCode::Query, ResponseCode::FormErr);
    message.to_vec().map(Outcome::Reply).unwrap_or(Outcome::Drop)
}

/// A response header for `request`: same ID, opcode, RD flag and question; EDNS if it used EDNS.
fn response_to(request: &Message) -> Message {
    let mut response = Message::new();
    response
        .set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_recursion_desired(request.recursion_desired());
    if let Some(q) = request.queries().first() {
        response.add_query(Query::query(q.name().clone(), q.query_type()));
    }
    if request.extensions().is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(MAX_UDP_PAYLOAD).set_version(0);
        response.set_edns(edns);
    }
    response
}

fn fill(response: &mut Message, reply: Reply, transport: Transport, udp_answer_limit: Option<usize>) {
    let mut answers = reply.answers;
    if transport == Transport::Udp
        && let Some(limit) = udp_answer_limit
    {
        answers.truncate(limit);
    }
    response.set_response_code(reply.rcode);
    response.insert_answers(answers);
    response.insert_name_servers(reply.authority);
    response.insert_additionals(reply.additionals);
}

/// The size a response may take: the client's EDNS buffer (512 without EDNS) over UDP; 64 KiB over TCP.
fn size_limit(request: &Message, transport: Transport) -> usize {
    match transport {
        Transport::Tcp => usize::from(u16::MAX),
        Transport::Udp if request.extensions().is_none() => CLASSIC_UDP_PAYLOAD,
        Transport::Udp => usize::from(request.max_payload().min(MAX_UDP_PAYLOAD)),
    }
}

/// Encodes `response` within the transport's limit. When it does not fit, it keeps as many whole
/// records as fit (answers first, then additional records) and sets TC, so that the client retries
/// over TCP. Consul cuts answers without saying so; census always says so.
fn encode(mut response: Message, transport: Transport, request: &Message) -> Vec<u8> {
    let limit = size_limit(request, transport);
    match response.to_vec() {
        Ok(bytes) if bytes.len() <= limit => return bytes,
        Ok(_) => {}
        Err(_) => return server_failure(&response),
    }
    let answers = response.take_answers();
    let authority = response.take_name_servers();
    let additionals = response.take_additionals();
    response.set_truncated(true);
    let fits = |answers: &[Record], authority: &[Record], additionals: &[Record]| {
        let mut candidate = response.clone();
        candidate.insert_answers(answers.to_vec());
        candidate.insert_name_servers(authority.to_vec());
        candidate.insert_additionals(additionals.to_vec());
        candidate.to_vec().ok().filter(|b| b.len() <= limit)
    };
    // The largest prefix of the answers that fits alone; then as many additional records as fit.
    let Some(keep) = largest_fit(answers.len(), |n| fits(&answers[..n], &[], &[]).is_some()) else {
        return server_failure(&response);
    };
    // Authority and additional records only travel with a complete answer section.
    let complete = keep == answers.len();
    let answers = &answers[..keep];
    let (authority, extra) = if complete {
        let extra =
            largest_fit(additionals.len(), |n| fits(answers, &authority, &additionals[..n]).is_some());
        (&authority[..], extra.unwrap_or(0))
    } else {
        (&[][..], 0)
    };
    fits(answers, authority, &additionals[..extra]).unwrap_or_else(|| server_failure(&response))
}

/// The largest `n` in 0..=max with `ok(n)`, assuming `ok` holds up to some point and fails after it.
fn largest_fit(max: usize, ok: impl Fn(usize) -> bool) -> Option<usize> {
    if !ok(0) {
        return None;
    }
    let (mut lo, mut hi) = (0, max);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if ok(mid) { lo = mid } else { hi = mid - 1 }
    }
    Some(lo)
}

fn server_failure(response: &Message) -> Vec<u8> {
    Message::error_msg(response.id(), response.op_code(), ResponseCode::ServFail).to_vec().unwrap_or_default()
}
