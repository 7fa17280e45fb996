export type { KeyHistoryEntry, KeysPageOptions, ScopeChoice } from './options.js'
export { createKeysPage, type KeysPageBindings, type KeysPageEnv, PAGE_AUTHENTICATE_BINDING } from './page.js'
export { CONTENT_SECURITY_POLICY } from './security.js'
