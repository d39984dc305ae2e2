//! The audit log: every security-relevant action, newest first.

use super::{list_page, Call, Result};
use worker::Response;

/// `GET .../audit`, paginated newest first.
pub async fn serve(cx: &mut Call<'_>) -> Result<Response> {
    let project = cx.project()?.to_string();
    list_page(
        cx,
        "SELECT id, at, actor, action, target, detail FROM audit_log
         WHERE project_id = ?1 AND (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3",
        &project,
        &["id"],
        "events",
    )
    .await
}
