// TandemX client SDK: connect to a room (stock y-websocket underneath), presence helpers, room
// tokens, the /v1 HTTP API, the asset library, and voice/video calls.

export {
  connect,
  roomsUrl,
  shouldReconnect,
  CLOSE_TOKEN_EXPIRED,
  type AuthMode,
  type Connection,
  type ConnectionEvents,
  type ConnectionStatus,
  type ConnectOptions,
  type ConversationEvent,
  type GetToken,
  type StatusEvent,
  type TokenReason,
  type TokenRequest,
  type TokenResult
} from './connect.js'
export {
  createPresence,
  colorFor,
  throttle,
  type CursorPosition,
  type Peer,
  type Presence,
  type PresenceOptions,
  type PresenceState,
  type PresenceUser
} from './presence.js'
export {
  cacheTokens,
  devTokenProvider,
  fetchDevToken,
  type CacheOptions,
  type DevToken,
  type DevTokenRequest
} from './tokens.js'
export {
  ApiError,
  TandemxApi,
  httpBase,
  type ApiKey,
  type ApiOptions,
  type Applied,
  type Branch,
  type Changes,
  type Deleted,
  type Diff,
  type DocumentContent,
  type DocumentInfo,
  type EditOp,
  type KeyCreated,
  type LoggedUpdate,
  type Member,
  type Merged,
  type MergePreview,
  type Problem,
  type Project,
  type ProjectCreated,
  type Replay,
  type Role,
  type RoomToken,
  type RoomTokenRequest,
  type Version
} from './api.js'
export {
  bodyText,
  conversationRoutes,
  pointAnchor,
  resolveTextAnchor,
  subscribeChat,
  subscribeInbox,
  subscribeThreads,
  textAnchor,
  textBody,
  type ActivityEntry,
  type Anchor,
  type Body,
  type ChatMessage,
  type Comment,
  type ConversationRoutes,
  type Inline,
  type Live,
  type Notification,
  type NotificationLevel,
  type Position,
  type Review,
  type Stamp,
  type Thread
} from './conversations.js'
export {
  assetRoutes,
  assetUri,
  missingParts,
  parseAssetUri,
  partRange,
  planParts,
  DEFAULT_DIRECT_LIMIT,
  DEFAULT_PART_SIZE,
  MAX_PARTS,
  MIN_PART_SIZE,
  type Asset,
  type AssetLink,
  type AssetQuery,
  type AssetRoutes,
  type AssetStorage,
  type AssetTransport,
  type AssetUsage,
  type AssetVersion,
  type DocumentAssets,
  type Licence,
  type PreviewFormat,
  type PreviewWidth,
  type SendInit,
  type Upload,
  type UploadOptions,
  type UploadProgress
} from './assets.js'
export { createAssetLinks, type AssetLinks, type AssetLinksOptions } from './asset-links.js'
export { browserNetwork, retryable, type Network } from './network.js'
export { Sha256, sha256Hex, toHex, WEBCRYPTO_HASH_LIMIT } from './sha256.js'
export {
  joinCall,
  fetchIceServers,
  iceSchedule,
  signalUrl,
  CallError,
  CallFullError,
  CLOSE_RATE_LIMITED,
  CLOSE_REVOKED,
  type Call,
  type CallClosed,
  type CallEvents,
  type CallParticipant,
  type CallPresence,
  type IceSchedule,
  type IceServerList,
  type JoinCallOptions,
  type LocalCallState,
  type MediaStreamConstructor,
  type PeerConnectionConstructor,
  type SignalData
} from './calls.js'
export { SpeakingDetector, audioLevels, type AudioLevels, type SpeakingOptions } from './speaking.js'
export { PrepareError, CLOSE_TOKEN_UNAVAILABLE, type WebSocketConstructor } from './token-socket.js'
