//! [`Flow`]: what a policy tells its glue after each step of a request.

use crate::reply::LocalReply;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow {
    /// The request goes on (to the next stage, then upstream).
    Continue,
    /// The request ends here with this reply.
    Reply(LocalReply),
    /// The request waits for a callout or a key fetch; the policy names it again when it can
    /// go on ([`crate::Policy::on_tick`], [`crate::Policy::on_http_call_response`]) or
    /// answers it on [`crate::Policy::on_grpc_call_response`].
    Pause,
}
