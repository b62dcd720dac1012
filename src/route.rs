//! Routing: what a node does with one decoded datagram, as a pure function.
//! Owns every decision about a datagram before the core sees it (a peer's message, a hello, a
//! command, a query to answer, or a drop and why); must never touch a socket, a clock, the
//! address book or the guard. The runtime gathers the facts ([`Source`], [`Context`]), calls
//! [`route`], and carries out the [`Route`].
//!
//! | datagram                        | from                        | route                       |
//! |---------------------------------|-----------------------------|-----------------------------|
//! | node message of member `m`      | `m`'s address               | `Peer` (keyed: guard first) |
//! | node message of member `m`      | any other address           | `Untrusted(m)`: look `m` up |
//! | `AUTH_HELLO` of member `m`      | `m`'s address, keyed node   | `Hello`                     |
//! | `LEADER_INFO`, `STATUS`         | an allowed controller       | `Answer`                    |
//! | their replies (`key` set)       | a member's address          | drop: never answer a node   |
//! | `CONVERT_FOLLOWER` ... `SHUTDOWN` | an allowed controller     | `Command`                   |
//! | anything                        | a node stopped by SHUTDOWN  | drop, but for `STATUS` and the revival commands |
use crate::auth;
use crate::election::{Command, Msg, NodeId};
use crate::json::Datagram;
use crate::log::clip;
use crate::message::{self, Incoming, Query, Reject, Request};
use std::net::SocketAddr;

/// Why an input was dropped or an output not sent (the `reason` of `drop` and `send-failed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    Reject(Reject),
    BadJson,
    RecvError,
    /// A node message from an address that is not the named peer's.
    UntrustedSource,
    /// A `LEADER_INFO` answer arriving from a peer: never answered, so nodes cannot ping-pong.
    LeaderInfoReply,
    /// The same for a `STATUS` answer.
    StatusReply,
    ControllerNotAllowed,
    /// The node was stopped by `SHUTDOWN`: as if its process had ended, it answers nothing but
    /// `STATUS`, `CONVERT_FOLLOWER` and `TIMEOUT`.
    Stopped,
    SendError,
    NoAddress,
    /// With a cluster key: no valid tag, or not fresh.
    Auth(auth::Reject),
}

impl Dropped {
    pub fn as_str(self) -> &'static str {
        match self {
            Dropped::Reject(r) => r.as_str(),
            Dropped::BadJson => "bad-json",
            Dropped::RecvError => "recv-error",
            Dropped::UntrustedSource => "untrusted-source",
            Dropped::LeaderInfoReply => "leader-info-reply",
            Dropped::StatusReply => "status-reply",
            Dropped::ControllerNotAllowed => "controller-not-allowed",
            Dropped::Stopped => "stopped",
            Dropped::SendError => "send-error",
            Dropped::NoAddress => "no-address",
            Dropped::Auth(r) => r.as_str(),
        }
    }
}

/// What the runtime knows about where a datagram came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Source {
    pub addr: SocketAddr,
    /// One bit per member whose known addresses include `addr`.
    pub members: u64,
    /// `addr` may send controller requests (anyone may, unless `CONTROLLER_ALLOW` is set).
    pub controller: bool,
}

impl Source {
    fn is_member(&self, id: NodeId) -> bool {
        id < u64::BITS as usize && self.members & (1 << id) != 0
    }
}

/// What the runtime knows about the node itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Context<'a> {
    /// Members' names, in id order.
    pub names: &'a [String],
    /// A cluster key is configured (node messages pass the guard; hellos mean something).
    pub keyed: bool,
    /// The core is stopped (`SHUTDOWN`).
    pub stopped: bool,
}

/// What to do with a datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// A member's message from that member's address: through the guard when keyed, then to the
    /// core.
    Peer {
        from: NodeId,
        msg: Msg,
    },
    /// A member's message from an address not known as that member's: dropped, and the member's
    /// name looked up again soon (it may have come back at a new address).
    Untrusted {
        claimed: NodeId,
    },
    /// A member's `AUTH_HELLO` from its address, for the guard alone.
    Hello {
        from: NodeId,
    },
    /// A controller command for the core.
    Command(Command),
    /// A read to answer from the node's state.
    Answer(Query),
    Drop(Dropped, String),
}

/// The one decision the runtime takes about a decoded datagram.
pub fn route(d: &Datagram, src: &Source, ctx: &Context) -> Route {
    if ctx.keyed && d.request.as_deref() == Some(Request::AuthHello.name()) {
        return hello(d, src, ctx);
    }
    let incoming = match message::classify(d, ctx.names) {
        Ok(incoming) => incoming,
        Err(reject) => {
            let request = clip(d.request.as_deref().unwrap_or("null"));
            return Route::Drop(Dropped::Reject(reject), request);
        }
    };
    match incoming {
        Incoming::Peer { from, .. } if !src.is_member(from) => Route::Untrusted { claimed: from },
        Incoming::Peer { from, msg } if !ctx.stopped => Route::Peer { from, msg },
        Incoming::Query {
            query,
            reply_shaped: true,
        } if src.members != 0 => {
            let why = match query {
                Query::LeaderInfo => Dropped::LeaderInfoReply,
                Query::Status => Dropped::StatusReply,
            };
            Route::Drop(why, "from a peer".into())
        }
        Incoming::Query { .. } | Incoming::Control(_) if !src.controller => {
            Route::Drop(Dropped::ControllerNotAllowed, src.addr.to_string())
        }
        Incoming::Query { query, .. } if awake(ctx, query.request()) => Route::Answer(query),
        Incoming::Control(cmd) if awake(ctx, cmd.into()) => Route::Command(cmd),
        other => {
            let request = match other {
                Incoming::Peer { msg, .. } => Request::from(msg.kind),
                Incoming::Control(cmd) => cmd.into(),
                Incoming::Query { query, .. } => query.request(),
            };
            Route::Drop(Dropped::Stopped, request.name().to_string())
        }
    }
}

/// A running node takes every request; a stopped one only those that show or end the stop.
fn awake(ctx: &Context, request: Request) -> bool {
    !ctx.stopped
        || matches!(
            request,
            Request::Status | Request::ConvertFollower | Request::Timeout
        )
}

/// A keyed node's `AUTH_HELLO`: from a member, at that member's address, while running.
fn hello(d: &Datagram, src: &Source, ctx: &Context) -> Route {
    let sender = d.sender_name.as_deref().unwrap_or("");
    let Some(from) = ctx.names.iter().position(|n| n == sender) else {
        return Route::Drop(Dropped::Reject(Reject::UnknownSender), clip(sender));
    };
    if !src.is_member(from) {
        Route::Untrusted { claimed: from }
    } else if ctx.stopped {
        Route::Drop(Dropped::Stopped, Request::AuthHello.name().to_string())
    } else {
        Route::Hello { from }
    }
}

#[cfg(test)]
mod tests;
