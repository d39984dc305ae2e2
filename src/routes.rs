//! Every HTTP route, in one table. The worker dispatches by [`RouteId`] from [`match_route`],
//! and the OpenAPI document ([`crate::openapi`]) is generated from the same table, so a route
//! cannot exist without being described.

use crate::api::ApiError;
use crate::auth::Role;
use crate::names::{path_param, percent_decode, version_id, Id, RoomName};

/// One route of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteId {
    /// `GET /` service description.
    Index,
    /// `GET /health`.
    Health,
    /// `GET /rooms/{room}` WebSocket upgrade.
    Room,
    /// `GET /signal` WebSocket upgrade (y-webrtc signalling).
    Signal,
    /// `GET /v1/openapi.json`.
    OpenApi,
    /// `POST /v1/dev/token`.
    DevToken,
    /// `POST /v1/projects`.
    CreateProject,
    /// `GET /v1/projects/{project}`.
    GetProject,
    /// `DELETE /v1/projects/{project}`.
    DeleteProject,
    /// `GET /v1/projects/{project}/members`.
    ListMembers,
    /// `PUT /v1/projects/{project}/members/{sub}`.
    PutMember,
    /// `DELETE /v1/projects/{project}/members/{sub}`.
    RemoveMember,
    /// `GET /v1/projects/{project}/keys`.
    ListKeys,
    /// `POST /v1/projects/{project}/keys`.
    CreateKey,
    /// `DELETE /v1/projects/{project}/keys/{key}`.
    RevokeKey,
    /// `GET /v1/projects/{project}/signing-keys`.
    ListSigningKeys,
    /// `POST /v1/projects/{project}/signing-keys`.
    AddSigningKey,
    /// `DELETE /v1/projects/{project}/signing-keys/{kid}`.
    RevokeSigningKey,
    /// `GET /v1/projects/{project}/documents`.
    ListDocuments,
    /// `POST /v1/projects/{project}/documents`.
    CreateDocument,
    /// `GET /v1/projects/{project}/documents/{document}`.
    GetDocument,
    /// `DELETE /v1/projects/{project}/documents/{document}`.
    DeleteDocument,
    /// `GET /v1/projects/{project}/documents/{document}/update`.
    GetDocumentUpdate,
    /// `POST /v1/projects/{project}/documents/{document}/update`.
    PostDocumentUpdate,
    /// `POST /v1/projects/{project}/documents/{document}/edits`.
    PostDocumentEdits,
    /// `POST /v1/projects/{project}/tokens`.
    MintToken,
    /// `DELETE /v1/projects/{project}/tokens/{token}`.
    RevokeToken,
    /// `GET /v1/projects/{project}/audit`.
    Audit,
    /// `GET /v1/projects/{project}/webhooks`.
    ListWebhooks,
    /// `POST /v1/projects/{project}/webhooks`.
    CreateWebhook,
    /// `GET /v1/projects/{project}/webhooks/{webhook}`.
    GetWebhook,
    /// `PATCH /v1/projects/{project}/webhooks/{webhook}`.
    UpdateWebhook,
    /// `DELETE /v1/projects/{project}/webhooks/{webhook}`.
    DeleteWebhook,
    /// `POST /v1/projects/{project}/webhooks/{webhook}/test`.
    TestWebhook,
    /// `GET /v1/projects/{project}/webhooks/{webhook}/deliveries`.
    ListDeliveries,
    /// `POST /v1/projects/{project}/webhooks/{webhook}/rotate-secret`.
    RotateWebhookSecret,
    /// `PATCH /v1/projects/{project}`.
    UpdateProject,
    /// `GET /v1/projects/{project}/documents/{document}/versions`.
    ListVersions,
    /// `POST /v1/projects/{project}/documents/{document}/versions`.
    CreateVersion,
    /// `GET /v1/projects/{project}/documents/{document}/versions/{version}`.
    GetVersion,
    /// `GET /v1/projects/{project}/documents/{document}/versions/{version}/update`.
    GetVersionUpdate,
    /// `DELETE /v1/projects/{project}/documents/{document}/versions/{version}`.
    DeleteVersion,
    /// `POST /v1/projects/{project}/documents/{document}/versions/{version}/restore`.
    RestoreVersion,
    /// `GET /v1/projects/{project}/documents/{document}/diff`.
    DiffVersions,
    /// `GET /v1/projects/{project}/documents/{document}/history`.
    ReplayHistory,
    /// `GET /v1/projects/{project}/documents/{document}/history/at`.
    DocumentAt,
    /// `GET /v1/projects/{project}/documents/{document}/branches`.
    ListBranches,
    /// `POST /v1/projects/{project}/documents/{document}/branches`.
    CreateBranch,
    /// `GET /v1/projects/{project}/documents/{document}/merge`.
    PreviewMerge,
    /// `POST /v1/projects/{project}/documents/{document}/merge`.
    MergeBranch,
    /// `GET /v1/projects/{project}/documents/{document}/threads`.
    ListThreads,
    /// `POST /v1/projects/{project}/documents/{document}/threads`.
    CreateThread,
    /// `GET /v1/projects/{project}/documents/{document}/threads/{thread}`.
    GetThread,
    /// `PATCH /v1/projects/{project}/documents/{document}/threads/{thread}`.
    UpdateThread,
    /// `DELETE /v1/projects/{project}/documents/{document}/threads/{thread}`.
    DeleteThread,
    /// `POST /v1/projects/{project}/documents/{document}/threads/{thread}/comments`.
    AddComment,
    /// `PATCH /v1/projects/{project}/documents/{document}/threads/{thread}/comments/{comment}`.
    EditComment,
    /// `DELETE /v1/projects/{project}/documents/{document}/threads/{thread}/comments/{comment}`.
    DeleteComment,
    /// `PUT /v1/projects/{project}/documents/{document}/threads/{thread}/comments/{comment}/reactions/{emoji}`.
    AddReaction,
    /// `DELETE /v1/projects/{project}/documents/{document}/threads/{thread}/comments/{comment}/reactions/{emoji}`.
    RemoveReaction,
    /// `GET /v1/projects/{project}/documents/{document}/chat`.
    ListChat,
    /// `POST /v1/projects/{project}/documents/{document}/chat`.
    PostChat,
    /// `GET /v1/projects/{project}/documents/{document}/subscription`.
    GetSubscription,
    /// `PUT /v1/projects/{project}/documents/{document}/subscription`.
    PutSubscription,
    /// `GET /v1/projects/{project}/documents/{document}/reviews`.
    ListReviews,
    /// `POST /v1/projects/{project}/documents/{document}/reviews`.
    RequestReview,
    /// `GET /v1/projects/{project}/documents/{document}/reviews/{review}`.
    GetReview,
    /// `POST /v1/projects/{project}/documents/{document}/reviews/{review}/verdicts`.
    SubmitReview,
    /// `DELETE /v1/projects/{project}/documents/{document}/reviews/{review}`.
    WithdrawReview,
    /// `GET /v1/projects/{project}/documents/{document}/activity`.
    DocumentActivity,
    /// `GET /v1/projects/{project}/activity`.
    ProjectActivity,
    /// `GET /v1/projects/{project}/inbox`.
    ListInbox,
    /// `GET /v1/projects/{project}/inbox/count`.
    InboxCount,
    /// `POST /v1/projects/{project}/inbox/read`.
    MarkInboxRead,
    /// `DELETE /v1/projects/{project}/inbox/notifications/{notification}`.
    DeleteNotification,
    /// `GET /v1/projects/{project}/ice-servers`.
    IceServers,
    /// `GET /v1/projects/{project}/assets`.
    ListAssets,
    /// `POST /v1/projects/{project}/assets`.
    UploadAsset,
    /// `GET /v1/projects/{project}/asset-usage`.
    AssetStorage,
    /// `GET /v1/projects/{project}/assets/{asset}`.
    GetAsset,
    /// `PATCH /v1/projects/{project}/assets/{asset}`.
    UpdateAsset,
    /// `DELETE /v1/projects/{project}/assets/{asset}`.
    DeleteAsset,
    /// `POST /v1/projects/{project}/assets/{asset}/restore`.
    RestoreAsset,
    /// `POST /v1/projects/{project}/assets/{asset}/purge`.
    PurgeAsset,
    /// `GET /v1/projects/{project}/assets/{asset}/content`.
    GetAssetContent,
    /// `GET /v1/projects/{project}/assets/{asset}/versions`.
    ListAssetVersions,
    /// `POST /v1/projects/{project}/assets/{asset}/versions`.
    UploadAssetVersion,
    /// `GET /v1/projects/{project}/assets/{asset}/versions/{version}/content`.
    GetAssetVersionContent,
    /// `GET /v1/projects/{project}/assets/{asset}/preview`.
    AssetPreview,
    /// `PUT /v1/projects/{project}/assets/{asset}/tags/{tag}`.
    PutAssetTag,
    /// `DELETE /v1/projects/{project}/assets/{asset}/tags/{tag}`.
    DeleteAssetTag,
    /// `POST /v1/projects/{project}/assets/{asset}/links`.
    SignAssetLink,
    /// `GET /v1/projects/{project}/assets/{asset}/usage`.
    AssetUsage,
    /// `GET /v1/projects/{project}/documents/{document}/assets`.
    DocumentAssets,
    /// `GET /v1/projects/{project}/documents/{document}/export`.
    ExportDocument,
    /// `POST /v1/projects/{project}/documents/{document}/import`.
    ImportDocument,
    /// `POST /v1/projects/{project}/uploads`.
    CreateUpload,
    /// `GET /v1/projects/{project}/uploads/{upload}`.
    GetUpload,
    /// `DELETE /v1/projects/{project}/uploads/{upload}`.
    AbortUpload,
    /// `PUT /v1/projects/{project}/uploads/{upload}/parts/{part}`.
    PutUploadPart,
    /// `POST /v1/projects/{project}/uploads/{upload}/complete`.
    CompleteUpload,
}

impl RouteId {
    /// Whether a successful call may turn a room connection that was let in into one that is
    /// refused (a project, key, signing key or document gone, a member removed) or change what
    /// the worker caches with it (whether the project has webhooks, a document's row). After
    /// such a call the isolate forgets its cached room access (`edge::access`); after any other
    /// (reads, document writes, versions, history, tokens minted) it keeps it, so an integration
    /// that writes often does not send every join back to the database. Creating a project or
    /// a key cannot: only admissions are cached. Every route is named here, so a new one needs
    /// a decision.
    pub fn may_change_access(self) -> bool {
        match self {
            DeleteProject | UpdateProject | PutMember | RemoveMember | RevokeKey
            | RevokeSigningKey | CreateDocument | DeleteDocument | CreateWebhook
            | UpdateWebhook | DeleteWebhook | CreateBranch | RevokeToken | ImportDocument => true,
            Index | Health | Room | Signal | OpenApi | DevToken | CreateProject | GetProject
            | ListMembers | ListKeys | CreateKey | ListSigningKeys | AddSigningKey
            | ListDocuments | GetDocument | GetDocumentUpdate | PostDocumentUpdate
            | PostDocumentEdits | MintToken | Audit | ListWebhooks | GetWebhook | TestWebhook
            | ListDeliveries | ListVersions | CreateVersion | GetVersion | GetVersionUpdate
            | DeleteVersion | RestoreVersion | DiffVersions | ReplayHistory | DocumentAt
            | ListBranches | PreviewMerge | MergeBranch | RotateWebhookSecret | ExportDocument => {
                false
            }
            // Conversations, reviews, activity and the inbox change nobody's access.
            ListThreads | CreateThread | GetThread | UpdateThread | DeleteThread | AddComment
            | EditComment | DeleteComment | AddReaction | RemoveReaction | ListChat | PostChat
            | GetSubscription | PutSubscription | ListReviews | RequestReview | GetReview
            | SubmitReview | WithdrawReview | DocumentActivity | ProjectActivity | ListInbox
            | InboxCount | MarkInboxRead | DeleteNotification => false,
            // Handing out ICE servers changes nothing.
            IceServers => false,
            // Assets change nobody's access.
            ListAssets
            | UploadAsset
            | AssetStorage
            | GetAsset
            | UpdateAsset
            | DeleteAsset
            | RestoreAsset
            | PurgeAsset
            | GetAssetContent
            | ListAssetVersions
            | UploadAssetVersion
            | GetAssetVersionContent
            | AssetPreview
            | PutAssetTag
            | DeleteAssetTag
            | SignAssetLink
            | AssetUsage
            | DocumentAssets
            | CreateUpload
            | GetUpload
            | AbortUpload
            | PutUploadPart
            | CompleteUpload => false,
        }
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone.
    Public,
    /// Anyone, only when the server runs with `DEV_MODE=true`.
    DevMode,
    /// A room token for the room in the path.
    RoomToken,
    /// The admin secret.
    Admin,
    /// An API key of the project (or the admin secret) with at least this role.
    Key(Role),
    /// An API key, or a room token for the document in the path, with at least this role.
    KeyOrToken(Role),
    /// An API key, or a room token of the project (for any room), with at least this role:
    /// the project's routes for one user (the inbox, the activity feed). A key names the user
    /// it acts for in the `TandemX-Subject` header.
    KeyOrUser(Role),
    /// As [`Access::KeyOrUser`], or a signed link (`expires` and `sig` in the query) to this
    /// asset version's content or preview: for `<img src>` and downloads without a header.
    LinkOrUser(Role),
}

/// A row of the route table.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// What the route is.
    pub id: RouteId,
    /// HTTP method, uppercase.
    pub method: &'static str,
    /// Path template; `{name}` is a parameter (one path segment).
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// One line for the OpenAPI summary.
    pub summary: &'static str,
}

const fn r(
    id: RouteId,
    method: &'static str,
    path: &'static str,
    access: Access,
    summary: &'static str,
) -> Route {
    Route {
        id,
        method,
        path,
        access,
        summary,
    }
}

use Access::*;
use RouteId::*;

/// Every route.
pub const ROUTES: &[Route] = &[
    r(Index, "GET", "/", Public, "Describe the service"),
    r(
        Health,
        "GET",
        "/health",
        Public,
        "Check the Durable Object, D1 and R2 bindings",
    ),
    r(
        Room,
        "GET",
        "/rooms/{room}",
        RoomToken,
        "Open a room over WebSocket (y-websocket protocol)",
    ),
    r(
        Signal,
        "GET",
        "/signal",
        RoomToken,
        "Signal WebRTC peers over WebSocket (y-webrtc protocol)",
    ),
    r(
        OpenApi,
        "GET",
        "/v1/openapi.json",
        Public,
        "This OpenAPI document",
    ),
    r(
        DevToken,
        "POST",
        "/v1/dev/token",
        DevMode,
        "Mint a development token (DEV_MODE only)",
    ),
    r(
        CreateProject,
        "POST",
        "/v1/projects",
        Admin,
        "Create a project and its first owner key",
    ),
    r(
        GetProject,
        "GET",
        "/v1/projects/{project}",
        Key(Role::Viewer),
        "Read a project",
    ),
    r(
        DeleteProject,
        "DELETE",
        "/v1/projects/{project}",
        Key(Role::Owner),
        "Delete a project",
    ),
    r(
        ListMembers,
        "GET",
        "/v1/projects/{project}/members",
        KeyOrUser(Role::Viewer),
        "List members (any room token of the project may: mentions and reviews name members)",
    ),
    r(
        PutMember,
        "PUT",
        "/v1/projects/{project}/members/{sub}",
        Key(Role::Owner),
        "Add a member or change their role",
    ),
    r(
        RemoveMember,
        "DELETE",
        "/v1/projects/{project}/members/{sub}",
        Key(Role::Owner),
        "Remove a member",
    ),
    r(
        ListKeys,
        "GET",
        "/v1/projects/{project}/keys",
        Key(Role::Owner),
        "List API keys",
    ),
    r(
        CreateKey,
        "POST",
        "/v1/projects/{project}/keys",
        Key(Role::Owner),
        "Create an API key",
    ),
    r(
        RevokeKey,
        "DELETE",
        "/v1/projects/{project}/keys/{key}",
        Key(Role::Owner),
        "Revoke an API key",
    ),
    r(
        ListSigningKeys,
        "GET",
        "/v1/projects/{project}/signing-keys",
        Key(Role::Owner),
        "List signing keys",
    ),
    r(
        AddSigningKey,
        "POST",
        "/v1/projects/{project}/signing-keys",
        Key(Role::Owner),
        "Register a public key for project-signed tokens",
    ),
    r(
        RevokeSigningKey,
        "DELETE",
        "/v1/projects/{project}/signing-keys/{kid}",
        Key(Role::Owner),
        "Revoke a signing key",
    ),
    r(
        ListDocuments,
        "GET",
        "/v1/projects/{project}/documents",
        Key(Role::Viewer),
        "List documents",
    ),
    r(
        CreateDocument,
        "POST",
        "/v1/projects/{project}/documents",
        Key(Role::Editor),
        "Create a document",
    ),
    r(
        GetDocument,
        "GET",
        "/v1/projects/{project}/documents/{document}",
        KeyOrToken(Role::Viewer),
        "Read a document as JSON",
    ),
    r(
        DeleteDocument,
        "DELETE",
        "/v1/projects/{project}/documents/{document}",
        Key(Role::Owner),
        "Delete a document and its storage",
    ),
    r(
        GetDocumentUpdate,
        "GET",
        "/v1/projects/{project}/documents/{document}/update",
        KeyOrToken(Role::Viewer),
        "Read a document as a Yjs update",
    ),
    r(
        PostDocumentUpdate,
        "POST",
        "/v1/projects/{project}/documents/{document}/update",
        KeyOrToken(Role::Editor),
        "Apply a Yjs update",
    ),
    r(
        PostDocumentEdits,
        "POST",
        "/v1/projects/{project}/documents/{document}/edits",
        KeyOrToken(Role::Editor),
        "Apply JSON edit operations",
    ),
    r(
        MintToken,
        "POST",
        "/v1/projects/{project}/tokens",
        Key(Role::Viewer),
        "Mint a room token",
    ),
    r(
        RevokeToken,
        "DELETE",
        "/v1/projects/{project}/tokens/{token}",
        Key(Role::Owner),
        "Revoke one room token by its id",
    ),
    r(
        Audit,
        "GET",
        "/v1/projects/{project}/audit",
        Key(Role::Owner),
        "Read the audit log",
    ),
    r(
        ListWebhooks,
        "GET",
        "/v1/projects/{project}/webhooks",
        Key(Role::Owner),
        "List webhook subscriptions",
    ),
    r(
        CreateWebhook,
        "POST",
        "/v1/projects/{project}/webhooks",
        Key(Role::Owner),
        "Subscribe a URL to events",
    ),
    r(
        GetWebhook,
        "GET",
        "/v1/projects/{project}/webhooks/{webhook}",
        Key(Role::Owner),
        "Read a subscription",
    ),
    r(
        UpdateWebhook,
        "PATCH",
        "/v1/projects/{project}/webhooks/{webhook}",
        Key(Role::Owner),
        "Change a subscription (re-enabling resets its failures)",
    ),
    r(
        DeleteWebhook,
        "DELETE",
        "/v1/projects/{project}/webhooks/{webhook}",
        Key(Role::Owner),
        "Delete a subscription",
    ),
    r(
        TestWebhook,
        "POST",
        "/v1/projects/{project}/webhooks/{webhook}/test",
        Key(Role::Owner),
        "Send a webhook.test event",
    ),
    r(
        ListDeliveries,
        "GET",
        "/v1/projects/{project}/webhooks/{webhook}/deliveries",
        Key(Role::Owner),
        "List recent delivery attempts",
    ),
    r(
        RotateWebhookSecret,
        "POST",
        "/v1/projects/{project}/webhooks/{webhook}/rotate-secret",
        Key(Role::Owner),
        "Replace a subscription's signing secret (the old one signs too for a grace period)",
    ),
    r(
        UpdateProject,
        "PATCH",
        "/v1/projects/{project}",
        Key(Role::Owner),
        "Change a project's settings (name, history retention)",
    ),
    r(
        ListVersions,
        "GET",
        "/v1/projects/{project}/documents/{document}/versions",
        KeyOrToken(Role::Viewer),
        "List a document's versions, newest first",
    ),
    r(
        CreateVersion,
        "POST",
        "/v1/projects/{project}/documents/{document}/versions",
        KeyOrToken(Role::Editor),
        "Create a named version of the current state",
    ),
    r(
        GetVersion,
        "GET",
        "/v1/projects/{project}/documents/{document}/versions/{version}",
        KeyOrToken(Role::Viewer),
        "Read a version as JSON",
    ),
    r(
        GetVersionUpdate,
        "GET",
        "/v1/projects/{project}/documents/{document}/versions/{version}/update",
        KeyOrToken(Role::Viewer),
        "Read a version as a Yjs update",
    ),
    r(
        DeleteVersion,
        "DELETE",
        "/v1/projects/{project}/documents/{document}/versions/{version}",
        KeyOrToken(Role::Owner),
        "Delete a version",
    ),
    r(
        RestoreVersion,
        "POST",
        "/v1/projects/{project}/documents/{document}/versions/{version}/restore",
        KeyOrToken(Role::Editor),
        "Restore a version as a new change every client converges to",
    ),
    r(
        DiffVersions,
        "GET",
        "/v1/projects/{project}/documents/{document}/diff",
        KeyOrToken(Role::Viewer),
        "Compare two versions (or a version and the current state)",
    ),
    r(
        ReplayHistory,
        "GET",
        "/v1/projects/{project}/documents/{document}/history",
        KeyOrToken(Role::Viewer),
        "The stored updates of a time range, in order, with time and author",
    ),
    r(
        DocumentAt,
        "GET",
        "/v1/projects/{project}/documents/{document}/history/at",
        KeyOrToken(Role::Viewer),
        "The document as it was at an instant",
    ),
    r(
        ListBranches,
        "GET",
        "/v1/projects/{project}/documents/{document}/branches",
        KeyOrToken(Role::Viewer),
        "List the branches forked from a document",
    ),
    r(
        CreateBranch,
        "POST",
        "/v1/projects/{project}/documents/{document}/branches",
        KeyOrToken(Role::Editor),
        "Fork a document (now, or at a version) into a new document",
    ),
    r(
        PreviewMerge,
        "GET",
        "/v1/projects/{project}/documents/{document}/merge",
        KeyOrToken(Role::Viewer),
        "Preview what merging this branch into its parent would change",
    ),
    r(
        MergeBranch,
        "POST",
        "/v1/projects/{project}/documents/{document}/merge",
        KeyOrToken(Role::Editor),
        "Merge this branch's changes into its parent",
    ),
    r(
        ListThreads,
        "GET",
        "/v1/projects/{project}/documents/{document}/threads",
        KeyOrToken(Role::Viewer),
        "List a document's comment threads (or those changed since a sequence number)",
    ),
    r(
        CreateThread,
        "POST",
        "/v1/projects/{project}/documents/{document}/threads",
        KeyOrToken(Role::Commenter),
        "Open a thread anchored in the document, with its first comment",
    ),
    r(
        GetThread,
        "GET",
        "/v1/projects/{project}/documents/{document}/threads/{thread}",
        KeyOrToken(Role::Viewer),
        "Read a thread, its comments and where its anchor is now",
    ),
    r(
        UpdateThread,
        "PATCH",
        "/v1/projects/{project}/documents/{document}/threads/{thread}",
        KeyOrToken(Role::Commenter),
        "Resolve or reopen a thread, or replace its metadata",
    ),
    r(
        DeleteThread,
        "DELETE",
        "/v1/projects/{project}/documents/{document}/threads/{thread}",
        KeyOrToken(Role::Commenter),
        "Delete a thread",
    ),
    r(
        AddComment,
        "POST",
        "/v1/projects/{project}/documents/{document}/threads/{thread}/comments",
        KeyOrToken(Role::Commenter),
        "Reply in a thread",
    ),
    r(
        EditComment,
        "PATCH",
        "/v1/projects/{project}/documents/{document}/threads/{thread}/comments/{comment}",
        KeyOrToken(Role::Commenter),
        "Edit one's own comment",
    ),
    r(
        DeleteComment,
        "DELETE",
        "/v1/projects/{project}/documents/{document}/threads/{thread}/comments/{comment}",
        KeyOrToken(Role::Commenter),
        "Delete a comment (its tombstone stays)",
    ),
    r(
        AddReaction,
        "PUT",
        "/v1/projects/{project}/documents/{document}/threads/{thread}/comments/{comment}/reactions/{emoji}",
        KeyOrToken(Role::Commenter),
        "React to a comment (idempotent)",
    ),
    r(
        RemoveReaction,
        "DELETE",
        "/v1/projects/{project}/documents/{document}/threads/{thread}/comments/{comment}/reactions/{emoji}",
        KeyOrToken(Role::Commenter),
        "Take one's reaction back (idempotent)",
    ),
    r(
        ListChat,
        "GET",
        "/v1/projects/{project}/documents/{document}/chat",
        KeyOrToken(Role::Viewer),
        "Read the room's chat, newest first (or what came after a message)",
    ),
    r(
        PostChat,
        "POST",
        "/v1/projects/{project}/documents/{document}/chat",
        KeyOrToken(Role::Commenter),
        "Post a chat message to the room",
    ),
    r(
        GetSubscription,
        "GET",
        "/v1/projects/{project}/documents/{document}/subscription",
        KeyOrToken(Role::Viewer),
        "Which of a document's conversations notify the caller",
    ),
    r(
        PutSubscription,
        "PUT",
        "/v1/projects/{project}/documents/{document}/subscription",
        KeyOrToken(Role::Viewer),
        "Choose which of a document's conversations notify the caller",
    ),
    r(
        ListReviews,
        "GET",
        "/v1/projects/{project}/documents/{document}/reviews",
        KeyOrToken(Role::Viewer),
        "List the reviews requested on a document (a branch or its versions)",
    ),
    r(
        RequestReview,
        "POST",
        "/v1/projects/{project}/documents/{document}/reviews",
        KeyOrToken(Role::Editor),
        "Ask members to review a branch or a version",
    ),
    r(
        GetReview,
        "GET",
        "/v1/projects/{project}/documents/{document}/reviews/{review}",
        KeyOrToken(Role::Viewer),
        "Read a review and its verdicts",
    ),
    r(
        SubmitReview,
        "POST",
        "/v1/projects/{project}/documents/{document}/reviews/{review}/verdicts",
        KeyOrToken(Role::Commenter),
        "Approve or request changes, as one of the review's reviewers",
    ),
    r(
        WithdrawReview,
        "DELETE",
        "/v1/projects/{project}/documents/{document}/reviews/{review}",
        KeyOrToken(Role::Editor),
        "Withdraw a review request",
    ),
    r(
        DocumentActivity,
        "GET",
        "/v1/projects/{project}/documents/{document}/activity",
        KeyOrToken(Role::Viewer),
        "What happened to a document, newest first",
    ),
    r(
        ProjectActivity,
        "GET",
        "/v1/projects/{project}/activity",
        KeyOrUser(Role::Viewer),
        "What happened in the project, newest first",
    ),
    r(
        ListInbox,
        "GET",
        "/v1/projects/{project}/inbox",
        KeyOrUser(Role::Viewer),
        "The caller's notifications, newest first",
    ),
    r(
        InboxCount,
        "GET",
        "/v1/projects/{project}/inbox/count",
        KeyOrUser(Role::Viewer),
        "How many of the caller's notifications are unread",
    ),
    r(
        MarkInboxRead,
        "POST",
        "/v1/projects/{project}/inbox/read",
        KeyOrUser(Role::Viewer),
        "Mark some or all of the caller's notifications read",
    ),
    r(
        DeleteNotification,
        "DELETE",
        "/v1/projects/{project}/inbox/notifications/{notification}",
        KeyOrUser(Role::Viewer),
        "Delete one of the caller's notifications",
    ),
    r(
        IceServers,
        "GET",
        "/v1/projects/{project}/ice-servers",
        KeyOrUser(Role::Viewer),
        "ICE servers for calls: STUN, and short-lived TURN credentials for the caller",
    ),
    r(
        ListAssets,
        "GET",
        "/v1/projects/{project}/assets",
        KeyOrUser(Role::Viewer),
        "List and search the project's assets (name prefix, tag, type, uploader, trash, orphans)",
    ),
    r(
        UploadAsset,
        "POST",
        "/v1/projects/{project}/assets",
        KeyOrUser(Role::Editor),
        "Upload a file as a new asset (the body is the file, streamed to storage)",
    ),
    r(
        AssetStorage,
        "GET",
        "/v1/projects/{project}/asset-usage",
        KeyOrUser(Role::Viewer),
        "Storage the project's assets use, against its quota",
    ),
    r(
        GetAsset,
        "GET",
        "/v1/projects/{project}/assets/{asset}",
        KeyOrUser(Role::Viewer),
        "Read an asset's record",
    ),
    r(
        UpdateAsset,
        "PATCH",
        "/v1/projects/{project}/assets/{asset}",
        KeyOrUser(Role::Editor),
        "Rename an asset or set its licence",
    ),
    r(
        DeleteAsset,
        "DELETE",
        "/v1/projects/{project}/assets/{asset}",
        KeyOrUser(Role::Owner),
        "Move an asset to the trash (refused while documents use it, unless forced)",
    ),
    r(
        RestoreAsset,
        "POST",
        "/v1/projects/{project}/assets/{asset}/restore",
        KeyOrUser(Role::Owner),
        "Restore an asset from the trash",
    ),
    r(
        PurgeAsset,
        "POST",
        "/v1/projects/{project}/assets/{asset}/purge",
        KeyOrUser(Role::Owner),
        "Delete a trashed asset for good, its stored files included",
    ),
    r(
        GetAssetContent,
        "GET",
        "/v1/projects/{project}/assets/{asset}/content",
        KeyOrUser(Role::Viewer),
        "Download an asset's current version (Range, conditional requests)",
    ),
    r(
        ListAssetVersions,
        "GET",
        "/v1/projects/{project}/assets/{asset}/versions",
        KeyOrUser(Role::Viewer),
        "List an asset's versions, newest first",
    ),
    r(
        UploadAssetVersion,
        "POST",
        "/v1/projects/{project}/assets/{asset}/versions",
        KeyOrUser(Role::Editor),
        "Upload a file as a new version of an asset",
    ),
    r(
        GetAssetVersionContent,
        "GET",
        "/v1/projects/{project}/assets/{asset}/versions/{version}/content",
        LinkOrUser(Role::Viewer),
        "Download one version of an asset (immutable; signed links allowed)",
    ),
    r(
        AssetPreview,
        "GET",
        "/v1/projects/{project}/assets/{asset}/preview",
        LinkOrUser(Role::Viewer),
        "A resized image of an asset (PNG, JPEG, WebP, GIF sources; signed links allowed)",
    ),
    r(
        PutAssetTag,
        "PUT",
        "/v1/projects/{project}/assets/{asset}/tags/{tag}",
        KeyOrUser(Role::Editor),
        "Tag an asset",
    ),
    r(
        DeleteAssetTag,
        "DELETE",
        "/v1/projects/{project}/assets/{asset}/tags/{tag}",
        KeyOrUser(Role::Editor),
        "Remove a tag from an asset",
    ),
    r(
        SignAssetLink,
        "POST",
        "/v1/projects/{project}/assets/{asset}/links",
        KeyOrUser(Role::Viewer),
        "Make a short-lived signed link to a version's content or preview",
    ),
    r(
        AssetUsage,
        "GET",
        "/v1/projects/{project}/assets/{asset}/usage",
        KeyOrUser(Role::Viewer),
        "The documents that reference an asset, with counts",
    ),
    r(
        DocumentAssets,
        "GET",
        "/v1/projects/{project}/documents/{document}/assets",
        KeyOrToken(Role::Viewer),
        "The assets a document references, with counts",
    ),
    r(
        ExportDocument,
        "GET",
        "/v1/projects/{project}/documents/{document}/export",
        KeyOrToken(Role::Viewer),
        "Export the document and the asset files it references as one tar archive",
    ),
    r(
        ImportDocument,
        "POST",
        "/v1/projects/{project}/documents/{document}/import",
        // What creating a document takes (CreateDocument), since this creates one.
        Key(Role::Editor),
        "Create this document from an archive, with the assets it holds",
    ),
    r(
        CreateUpload,
        "POST",
        "/v1/projects/{project}/uploads",
        KeyOrUser(Role::Editor),
        "Start a resumable multipart upload (answered at once when the bytes are stored already)",
    ),
    r(
        GetUpload,
        "GET",
        "/v1/projects/{project}/uploads/{upload}",
        KeyOrUser(Role::Editor),
        "Read an upload and the parts received so far",
    ),
    r(
        AbortUpload,
        "DELETE",
        "/v1/projects/{project}/uploads/{upload}",
        KeyOrUser(Role::Editor),
        "Abort an upload and drop its parts",
    ),
    r(
        PutUploadPart,
        "PUT",
        "/v1/projects/{project}/uploads/{upload}/parts/{part}",
        KeyOrUser(Role::Editor),
        "Upload one part (every part the upload's part size but the last)",
    ),
    r(
        CompleteUpload,
        "POST",
        "/v1/projects/{project}/uploads/{upload}/complete",
        KeyOrUser(Role::Editor),
        "Finish an upload: check its digest and create the asset or version",
    ),
];

/// The path parameters of a matched route, each parsed by its name in the template. Every
/// parameter is percent-decoded once, then refused (400) if it holds `/ ? # %`, a control
/// character, or is a dot segment; then it must pass its own rule: a version id is an integer
/// (anything else names no version: 404), a document or room name passes the room-name rules
/// (400), ids pass the id rules (404: no such thing can exist), a member's `sub` the user-id
/// rules (400).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    /// `{project}`.
    pub project: Option<Id>,
    /// `{document}` or `{room}`.
    pub document: Option<RoomName>,
    /// `{version}`.
    pub version: Option<u64>,
    /// `{sub}`.
    pub sub: Option<String>,
    /// `{key}`.
    pub key: Option<Id>,
    /// `{kid}`.
    pub kid: Option<Id>,
    /// `{webhook}`.
    pub webhook: Option<Id>,
    /// `{token}`: a token's id (`jti`).
    pub token: Option<Id>,
    /// `{thread}`.
    pub thread: Option<u64>,
    /// `{comment}`.
    pub comment: Option<u64>,
    /// `{review}`.
    pub review: Option<u64>,
    /// `{notification}`.
    pub notification: Option<u64>,
    /// `{emoji}`: a reaction.
    pub emoji: Option<String>,
    /// `{asset}`.
    pub asset: Option<Id>,
    /// `{upload}`.
    pub upload: Option<Id>,
    /// `{part}`: a part number, from 1.
    pub part: Option<u64>,
    /// `{tag}`.
    pub tag: Option<String>,
}

fn present<'a, T>(value: &'a Option<T>, what: &'static str) -> Result<&'a T, ApiError> {
    value.as_ref().ok_or_else(|| {
        // The route table guarantees the parameter; a route without it is a programming error.
        ApiError::Missing(what, String::new())
    })
}

impl Params {
    /// `{project}`.
    pub fn project(&self) -> Result<&Id, ApiError> {
        present(&self.project, "project")
    }
    /// `{document}` or `{room}`.
    pub fn document(&self) -> Result<&RoomName, ApiError> {
        present(&self.document, "document")
    }
    /// `{version}`.
    pub fn version(&self) -> Result<u64, ApiError> {
        present(&self.version, "version").copied()
    }
    /// `{sub}`.
    pub fn sub(&self) -> Result<&str, ApiError> {
        present(&self.sub, "member").map(String::as_str)
    }
    /// `{key}`.
    pub fn key(&self) -> Result<&Id, ApiError> {
        present(&self.key, "key")
    }
    /// `{kid}`.
    pub fn kid(&self) -> Result<&Id, ApiError> {
        present(&self.kid, "signing key")
    }
    /// `{webhook}`.
    pub fn webhook(&self) -> Result<&Id, ApiError> {
        present(&self.webhook, "webhook")
    }
    /// `{token}`.
    pub fn token(&self) -> Result<&Id, ApiError> {
        present(&self.token, "token")
    }

    /// `{thread}`.
    pub fn thread(&self) -> Result<u64, ApiError> {
        present(&self.thread, "thread").copied()
    }

    /// `{comment}`.
    pub fn comment(&self) -> Result<u64, ApiError> {
        present(&self.comment, "comment").copied()
    }

    /// `{review}`.
    pub fn review(&self) -> Result<u64, ApiError> {
        present(&self.review, "review").copied()
    }

    /// `{notification}`.
    pub fn notification(&self) -> Result<u64, ApiError> {
        present(&self.notification, "notification").copied()
    }

    /// `{emoji}`.
    pub fn emoji(&self) -> Result<&str, ApiError> {
        present(&self.emoji, "reaction").map(String::as_str)
    }

    /// `{asset}`.
    pub fn asset(&self) -> Result<&Id, ApiError> {
        present(&self.asset, "asset")
    }

    /// `{upload}`.
    pub fn upload(&self) -> Result<&Id, ApiError> {
        present(&self.upload, "upload")
    }

    /// `{part}`.
    pub fn part(&self) -> Result<u64, ApiError> {
        present(&self.part, "part").copied()
    }

    /// `{tag}`.
    pub fn tag(&self) -> Result<&str, ApiError> {
        present(&self.tag, "tag").map(String::as_str)
    }

    /// Parses the raw segment of parameter `name` into its field.
    fn set(&mut self, name: &str, raw: &str) -> Result<(), ApiError> {
        let numbered: Option<(&mut Option<u64>, &'static str)> = match name {
            "thread" => Some((&mut self.thread, "thread")),
            "comment" => Some((&mut self.comment, "comment")),
            "review" => Some((&mut self.review, "review")),
            "notification" => Some((&mut self.notification, "notification")),
            "part" => Some((&mut self.part, "part")),
            _ => None,
        };
        if let Some((field, what)) = numbered {
            // Ids are integers: whatever else is in the segment names nothing.
            *field = Some(
                percent_decode(raw)
                    .as_deref()
                    .and_then(version_id)
                    .ok_or_else(|| ApiError::Missing(what, raw.to_owned()))?,
            );
            return Ok(());
        }
        if name == "tag" {
            let value = path_param("tag", raw)?;
            self.tag = Some(crate::assets::parse_tag(&value)?);
            return Ok(());
        }
        if name == "emoji" {
            let value = path_param("emoji", raw)?;
            crate::conversations::check_emoji(&value)?;
            self.emoji = Some(value);
            return Ok(());
        }
        if name == "version" {
            // Ids are integers: whatever else is in the segment names no version.
            self.version = Some(
                percent_decode(raw)
                    .as_deref()
                    .and_then(version_id)
                    .ok_or_else(|| ApiError::Missing("version", raw.to_owned()))?,
            );
            return Ok(());
        }
        let name: &'static str = match name {
            "project" => "project",
            "document" => "document",
            "room" => "room",
            "sub" => "sub",
            "key" => "key",
            "kid" => "kid",
            "webhook" => "webhook",
            "token" => "token",
            "asset" => "asset",
            "upload" => "upload",
            _ => unreachable!("a route template names an unknown parameter"),
        };
        let value = path_param(name, raw)?;
        let missing = |what: &'static str| {
            let value = value.clone();
            move |_| ApiError::Missing(what, value)
        };
        match name {
            "project" => {
                self.project = Some(Id::parse("project id", &value).map_err(missing("project"))?)
            }
            "document" | "room" => self.document = Some(RoomName::parse(&value)?),
            "sub" => {
                crate::auth::validate_sub(&value).map_err(ApiError::InvalidBody)?;
                self.sub = Some(value);
            }
            "key" => self.key = Some(Id::parse("key id", &value).map_err(missing("key"))?),
            "kid" => self.kid = Some(Id::parse("kid", &value).map_err(missing("signing key"))?),
            "token" => self.token = Some(Id::parse("token id", &value).map_err(missing("token"))?),
            "asset" => self.asset = Some(Id::parse("asset id", &value).map_err(missing("asset"))?),
            "upload" => {
                self.upload = Some(Id::parse("upload id", &value).map_err(missing("upload"))?)
            }
            _ => self.webhook = Some(Id::parse("webhook id", &value).map_err(missing("webhook"))?),
        }
        Ok(())
    }
}

/// A matched route and its parsed path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    /// The route.
    pub id: RouteId,
    /// Who may call it (from the table).
    pub access: Access,
    /// Parameter values.
    pub params: Params,
}

fn segments(path: &str) -> Vec<&str> {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return vec![];
    }
    trimmed.trim_start_matches('/').split('/').collect()
}

/// The table's row for `id`.
pub fn route(id: RouteId) -> &'static Route {
    ROUTES
        .iter()
        .find(|r| r.id == id)
        .expect("every route id is in the table (tested)")
}

/// Finds the route of a request: 404 when no path matches, 405 when the path matches with
/// another method (naming every method the path takes, for the `Allow` header); then parses its
/// parameters ([`Params`]). `method` is compared as sent, case-sensitively (RFC 9110, 9.1), so
/// a method no route takes, known or not, is never read as another.
pub fn match_route(method: &str, path: &str) -> Result<Matched, ApiError> {
    let got = segments(path);
    let mut allow: Vec<&'static str> = Vec::new();
    for route in ROUTES {
        let want = segments(route.path);
        if want.len() != got.len() {
            continue;
        }
        let fits = want.iter().zip(&got).all(|(w, g)| {
            if w.starts_with('{') {
                !g.is_empty()
            } else {
                w == g
            }
        });
        if !fits {
            continue;
        }
        if route.method == method {
            let mut params = Params::default();
            for (w, g) in want.iter().zip(&got) {
                if let Some(name) = w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                    params.set(name, g)?;
                }
            }
            return Ok(Matched {
                id: route.id,
                access: route.access,
                params,
            });
        }
        if !allow.contains(&route.method) {
            allow.push(route.method);
        }
    }
    Err(if allow.is_empty() {
        ApiError::NotFound
    } else {
        ApiError::MethodNotAllowed { allow }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails to compile when a variant is added without a thought for the table.
    fn all() -> Vec<RouteId> {
        let every = [
            Index,
            Health,
            Room,
            Signal,
            OpenApi,
            DevToken,
            CreateProject,
            GetProject,
            DeleteProject,
            ListMembers,
            PutMember,
            RemoveMember,
            ListKeys,
            CreateKey,
            RevokeKey,
            ListSigningKeys,
            AddSigningKey,
            RevokeSigningKey,
            ListDocuments,
            CreateDocument,
            GetDocument,
            DeleteDocument,
            GetDocumentUpdate,
            PostDocumentUpdate,
            PostDocumentEdits,
            MintToken,
            RevokeToken,
            Audit,
            ListWebhooks,
            CreateWebhook,
            GetWebhook,
            UpdateWebhook,
            DeleteWebhook,
            TestWebhook,
            ListDeliveries,
            UpdateProject,
            ListVersions,
            CreateVersion,
            GetVersion,
            GetVersionUpdate,
            DeleteVersion,
            RestoreVersion,
            DiffVersions,
            ReplayHistory,
            DocumentAt,
            ListBranches,
            CreateBranch,
            PreviewMerge,
            MergeBranch,
            RotateWebhookSecret,
            ListThreads,
            CreateThread,
            GetThread,
            UpdateThread,
            DeleteThread,
            AddComment,
            EditComment,
            DeleteComment,
            AddReaction,
            RemoveReaction,
            ListChat,
            PostChat,
            GetSubscription,
            PutSubscription,
            ListReviews,
            RequestReview,
            GetReview,
            SubmitReview,
            WithdrawReview,
            DocumentActivity,
            ProjectActivity,
            ListInbox,
            InboxCount,
            MarkInboxRead,
            DeleteNotification,
            IceServers,
            ListAssets,
            UploadAsset,
            AssetStorage,
            GetAsset,
            UpdateAsset,
            DeleteAsset,
            RestoreAsset,
            PurgeAsset,
            GetAssetContent,
            ListAssetVersions,
            UploadAssetVersion,
            GetAssetVersionContent,
            AssetPreview,
            PutAssetTag,
            DeleteAssetTag,
            SignAssetLink,
            AssetUsage,
            DocumentAssets,
            ExportDocument,
            ImportDocument,
            CreateUpload,
            GetUpload,
            AbortUpload,
            PutUploadPart,
            CompleteUpload,
        ];
        for id in every {
            match id {
                Index | Health | Room | Signal | OpenApi | DevToken | CreateProject
                | GetProject | DeleteProject | ListMembers | PutMember | RemoveMember
                | ListKeys | CreateKey | RevokeKey | ListSigningKeys | AddSigningKey
                | RevokeSigningKey | ListDocuments | CreateDocument | GetDocument
                | DeleteDocument | GetDocumentUpdate | PostDocumentUpdate | PostDocumentEdits
                | MintToken | RevokeToken | Audit | ListWebhooks | CreateWebhook | GetWebhook
                | UpdateWebhook | DeleteWebhook | TestWebhook | ListDeliveries | UpdateProject
                | ListVersions | CreateVersion | GetVersion | GetVersionUpdate | DeleteVersion
                | RestoreVersion | DiffVersions | ReplayHistory | DocumentAt | ListBranches
                | CreateBranch | PreviewMerge | MergeBranch | RotateWebhookSecret => {}
                ExportDocument | ImportDocument => {}
                ListThreads | CreateThread | GetThread | UpdateThread | DeleteThread
                | AddComment | EditComment | DeleteComment | AddReaction | RemoveReaction
                | ListChat | PostChat | GetSubscription | PutSubscription | ListReviews
                | RequestReview | GetReview | SubmitReview | WithdrawReview | DocumentActivity
                | ProjectActivity | ListInbox | InboxCount | MarkInboxRead | DeleteNotification => {
                }
                IceServers => {}
                ListAssets
                | UploadAsset
                | AssetStorage
                | GetAsset
                | UpdateAsset
                | DeleteAsset
                | RestoreAsset
                | PurgeAsset
                | GetAssetContent
                | ListAssetVersions
                | UploadAssetVersion
                | GetAssetVersionContent
                | AssetPreview
                | PutAssetTag
                | DeleteAssetTag
                | SignAssetLink
                | AssetUsage
                | DocumentAssets
                | CreateUpload
                | GetUpload
                | AbortUpload
                | PutUploadPart
                | CompleteUpload => {}
            }
        }
        every.to_vec()
    }

    #[test]
    fn every_route_id_is_in_the_table_once() {
        for id in all() {
            assert_eq!(ROUTES.iter().filter(|r| r.id == id).count(), 1, "{id:?}");
        }
        assert_eq!(ROUTES.len(), all().len());
    }

    #[test]
    fn only_writes_that_can_refuse_a_connection_clear_the_access_cache() {
        for route in ROUTES {
            if route.method == "GET" || route.method == "HEAD" {
                assert!(!route.id.may_change_access(), "{:?} only reads", route.id);
            }
        }
        // Everything a room connection's check reads (d1::room_access, signing keys).
        for id in [
            DeleteProject,
            RevokeKey,
            RevokeSigningKey,
            DeleteDocument,
            CreateDocument,
            CreateWebhook,
            UpdateWebhook,
            DeleteWebhook,
            RevokeToken,
        ] {
            assert!(id.may_change_access(), "{id:?}");
        }
        // The frequent writes of integrations keep the cache.
        for id in [
            PostDocumentUpdate,
            PostDocumentEdits,
            MintToken,
            CreateVersion,
        ] {
            assert!(!id.may_change_access(), "{id:?}");
        }
    }

    #[test]
    fn every_route_matches_itself_and_only_itself() {
        for route in ROUTES {
            let path = route
                .path
                .replace("{version}", "7")
                .replace("{thread}", "7")
                .replace("{comment}", "7")
                .replace("{review}", "7")
                .replace("{notification}", "7")
                .replace("{part}", "7")
                .replace("{emoji}", "ok")
                .replace("{part}", "7")
                .replace("{", "x")
                .replace("}", "");
            let m = match_route(route.method, &path).unwrap();
            assert_eq!(m.id, route.id, "{} {}", route.method, route.path);
        }
    }

    #[test]
    fn parameters_are_decoded_and_misses_are_told_apart() {
        let m = match_route("PUT", "/v1/projects/prj_1/members/ada%40example.com").unwrap();
        assert_eq!(m.id, PutMember);
        assert_eq!(m.params.project().unwrap().as_str(), "prj_1");
        assert_eq!(m.params.sub().unwrap(), "ada@example.com");
        assert_eq!(match_route("GET", "/nope").unwrap_err().status(), 404);
        assert_eq!(
            match_route("PUT", "/v1/projects/p").unwrap_err().status(),
            405
        );
        assert_eq!(
            match_route("GET", "/v1/projects/p/members/%zz")
                .unwrap_err()
                .status(),
            405
        );
        assert_eq!(
            match_route("PUT", "/v1/projects/p/members/%zz")
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            match_route("GET", "/v1/projects//members")
                .unwrap_err()
                .status(),
            404
        );
        assert_eq!(match_route("GET", "/").unwrap().id, Index);
    }

    #[test]
    fn any_other_method_on_a_known_path_is_405_naming_the_methods_it_takes() {
        let allow = |method: &str, path: &str| match match_route(method, path) {
            Err(ApiError::MethodNotAllowed { allow }) => allow,
            other => panic!("{method} {path}: {other:?}"),
        };
        let project = "/v1/projects/prj_1";
        for method in [
            "TRACE", "QUERY", "PUT", "OPTIONS", "HEAD", "FOO", "get", "Get",
        ] {
            assert_eq!(
                allow(method, project),
                ["GET", "DELETE", "PATCH"],
                "{method}"
            );
        }
        assert_eq!(allow("PUT", "/"), ["GET"]);
        assert_eq!(
            allow("QUERY", &format!("{project}/documents/doc/merge")),
            ["GET", "POST"]
        );
        assert_eq!(
            allow("TRACE", &format!("{project}/members/ada")),
            ["PUT", "DELETE"]
        );
        // Every path of the table: its methods, and nothing else.
        for route in ROUTES {
            let path = route.path.replace('{', "x").replace('}', "");
            let mut want: Vec<&str> = ROUTES
                .iter()
                .filter(|r| r.path == route.path)
                .map(|r| r.method)
                .collect();
            let mut got = allow("TRACE", &path);
            want.sort_unstable();
            got.sort_unstable();
            assert_eq!(got, want, "{}", route.path);
        }
        let e = match_route("QUERY", "/health").unwrap_err();
        assert_eq!(e.status(), 405);
        assert_eq!(e.problem().error, "method-not-allowed");
        assert_eq!(match_route("TRACE", "/nope").unwrap_err().status(), 404);
    }

    #[test]
    fn version_ids_are_integers_and_anything_else_is_not_found() {
        let base = "/v1/projects/prj_1/documents/doc/versions";
        let m = match_route("GET", &format!("{base}/42")).unwrap();
        assert_eq!((m.id, m.params.version().unwrap()), (GetVersion, 42));
        for bad in [
            "abc",
            "1%2Fupdate",
            "..%2F..%2F__delete",
            "1%3Fx=",
            "%2e%2e",
            "-1",
            "1.0",
        ] {
            for (method, suffix) in [
                ("GET", ""),
                ("DELETE", ""),
                ("POST", "/restore"),
                ("GET", "/update"),
            ] {
                let e = match_route(method, &format!("{base}/{bad}{suffix}")).unwrap_err();
                assert_eq!(e.status(), 404, "{method} {bad}{suffix}");
            }
        }
    }

    #[test]
    fn decoded_reserved_characters_and_dot_segments_are_refused() {
        for bad in [
            "..%2F__delete",
            "a%2Fb",
            "a%3Fb",
            "a%23b",
            "a%25b",
            "%2e%2e",
            "%2E",
            "..",
            ".",
        ] {
            for path in [
                format!("/v1/projects/prj_1/documents/{bad}"),
                format!("/v1/projects/prj_1/documents/{bad}/versions"),
                format!("/v1/projects/{bad}/documents"),
                format!("/v1/projects/prj_1/members/{bad}"),
                format!("/v1/projects/prj_1/webhooks/{bad}"),
                format!("/rooms/{bad}"),
            ] {
                let method = if path.contains("members") {
                    "DELETE"
                } else {
                    "GET"
                };
                let e = match_route(method, &path).unwrap_err();
                assert_eq!(e.status(), 400, "{path}");
            }
        }
    }

    #[test]
    fn room_names_are_decoded_once_and_checked() {
        // One rule: a path parameter is percent-decoded once, so `%64oc` is the room `doc`.
        let m = match_route("GET", "/rooms/%64oc").unwrap();
        assert_eq!(m.params.document().unwrap().as_str(), "doc");
        assert_eq!(
            match_route("GET", "/rooms/a%20b").unwrap_err().status(),
            400
        );
        assert_eq!(
            match_route("GET", "/rooms/%C3%BC").unwrap_err().status(),
            400
        );
        let long = "a".repeat(129);
        assert_eq!(
            match_route("GET", &format!("/rooms/{long}"))
                .unwrap_err()
                .status(),
            400
        );
    }

    #[test]
    fn ids_that_cannot_exist_are_not_found() {
        assert_eq!(
            match_route("GET", "/v1/projects/a:b").unwrap_err().status(),
            404
        );
        assert_eq!(
            match_route("DELETE", "/v1/projects/prj_1/keys/a:b")
                .unwrap_err()
                .status(),
            404
        );
    }
}
