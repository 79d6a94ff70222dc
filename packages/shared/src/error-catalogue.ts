/**
 * Every error code FitStream logs, stores in dead letters, counts in metrics (the `code` label) and
 * answers over HTTP, in one table. Operators filter dead letters and alerts by these codes, so a code
 * is never renamed; docs/errors.md is rendered from this table and a test keeps both in step with the
 * code that throws them.
 */

/** What a stage worker does with a job that fails with the code. */
export type ErrorRetry =
  /** BullMQ retries it with exponential backoff; dead-lettered when the attempts run out. */
  | 'retried'
  /** Retried when the upstream status says it may pass (408, 429, 5xx, no answer); otherwise dead-lettered at once. */
  | 'retried if transient'
  /** Run again later without using an attempt (the upstream asked us to wait, or is down for everyone). */
  | 'deferred'
  /** Permanent: dead-lettered at once (or handled as the meaning says), never retried. */
  | 'not retried'
  /** The job's work must not be done: it completes as discarded, no retry and no dead letter. */
  | 'discarded'
  /** Never a job's failure: an HTTP answer, or a service refusing to start. */
  | 'not a job error'

export interface HttpAnswer {
  readonly status: number
  /** The route, or routes, that answer with this status and code. */
  readonly on: string
}

export interface ErrorCatalogueEntry {
  /** The service or package that raises it. */
  readonly raisedBy: string
  /** HTTP answers that carry the code (or, for a 5xx, the status only); empty when it never reaches an HTTP client. */
  readonly http: readonly HttpAnswer[]
  readonly retry: ErrorRetry
  /** What happened and what it means for the person or the operator, in a sentence or two. */
  readonly meaning: string
}

const STREAMR_REFUSED = 'Streamr refused the publish as invalid and no retry can change that; the dead letter keeps the SDK message.'

export const ERROR_CATALOGUE = {
  FST_ERR_ACCESS_TOKEN_UNAVAILABLE: {
    raisedBy: 'fetcher, token-service',
    http: [{ status: 503, on: 'POST /internal/users/:id/access-token/refresh' }],
    retry: 'retried',
    meaning:
      "No fresh access token could be had for the user just now: the token service was unreachable or failed, or another replica's refresh of the same token did not finish in time.",
  },
  FST_ERR_API_CLOSED: {
    raisedBy: 'token-service',
    http: [{ status: 400, on: 'POST /users' }],
    retry: 'not a job error',
    meaning:
      'The refresh token given to register a person is for the Google Fitness API, which Google has closed: connect the person through the Google Health API instead. Nothing is stored.',
  },
  FST_ERR_CHAIN_REVERTED: {
    raisedBy: 'membership service (publisher package), `fitstream du`',
    http: [{ status: 502, on: 'the /internal/members routes' }],
    retry: 'not retried',
    meaning:
      'The chain ran a Data Union transaction and the contract refused it (the revert reason is in the message): retrying cannot change that; a membership batch goes to `membership-dlq`.',
  },
  FST_ERR_CHAIN_UNAVAILABLE: {
    raisedBy: 'membership service (publisher package), `fitstream du`',
    http: [{ status: 503, on: 'the /internal/members routes' }],
    retry: 'retried',
    meaning:
      'The chain did not answer in time or refused the connection: a membership batch stays queued and is retried with backoff, and whoever it names is neither lost nor added twice (each retry reads who is a member first).',
  },
  FST_ERR_CONFIG: {
    raisedBy: 'every service',
    http: [],
    retry: 'not a job error',
    meaning:
      'A configuration variable (or the privacy policy file) is missing or malformed: the service prints which and exits with status 78 (EX_CONFIG) at start.',
  },
  FST_ERR_CONSENT_NEEDS_GOOGLE: {
    raisedBy: 'token-service',
    http: [{ status: 409, on: 'PUT /users/:id/consent' }],
    retry: 'not a job error',
    meaning:
      'The consent change asks for data the person has not granted at Google; the answer carries `missingScopes` and a `reconsentUrl` to send them to, and their consent is unchanged until they grant it there.',
  },
  FST_ERR_CONSENT_UNAVAILABLE: {
    raisedBy: 'token-service',
    http: [{ status: 400, on: 'POST /users, PUT /users/:id/consent' }],
    retry: 'not a job error',
    meaning:
      "Some of the data types asked for cannot be read from the Google API the person (or the deployment's GOOGLE_DATA_API) is read from; nothing is changed.",
  },
  FST_ERR_DECRYPT: {
    raisedBy: 'token-service, fetcher',
    http: [],
    retry: 'not retried',
    meaning:
      'Stored encrypted material (a refresh or access token, a PKCE verifier) does not decrypt: the key id is missing from the keyring (`REFRESH_TOKEN_KEYS` or `ACCESS_TOKEN_KEYS`), the key is wrong, or the ciphertext was altered.',
  },
  FST_ERR_GOOGLE_CODE: {
    raisedBy: 'token-service',
    http: [{ status: 400, on: 'GET /oauth/callback, as an HTML page' }],
    retry: 'not a job error',
    meaning:
      'Google did not exchange the authorization code from its consent screen for tokens, or granted no offline access (no refresh token); the person is asked to start again and nothing is stored.',
  },
  FST_ERR_GOOGLE_ID_TOKEN: {
    raisedBy: 'token-service',
    http: [{ status: 400, on: 'GET /oauth/callback, as an HTML page' }],
    retry: 'not a job error',
    meaning:
      "Google's answer to the consent flow carried no ID token FitStream can trust (missing, not a JWT, not issued by Google, for another OAuth client, expired, or naming no account): the person is asked to start again and nothing is stored.",
  },
  FST_ERR_GOOGLE_MALFORMED: {
    raisedBy: 'fetcher',
    http: [],
    retry: 'not retried',
    meaning:
      'A Google data API answered 200 with something unusable: not a JSON object, no bucket or data point list, every point unusable, or more pages than the fetcher follows.',
  },
  FST_ERR_GOOGLE_RATE_LIMITED: {
    raisedBy: 'fetcher',
    http: [],
    retry: 'deferred',
    meaning:
      "Google answered 429 (or 403 with a rate-limit reason), or the fetcher's own GOOGLE_RATE_LIMIT_PER_SECOND stayed used up: the fetch waits as long as Google asks (capped), holding back this user for a per-user limit and every fetch for a project quota.",
  },
  FST_ERR_GOOGLE_REJECTED: {
    raisedBy: 'fetcher',
    http: [],
    retry: 'not retried',
    meaning:
      'A Google data API refused the request with a 4xx other than 401, 408 and 429 (a permission denied, a bad request): sending it again cannot help; the dead letter keeps Google\u2019s own words.',
  },
  FST_ERR_GOOGLE_REVOKE: {
    raisedBy: 'token-service',
    http: [],
    retry: 'not a job error',
    meaning:
      "Google's revocation endpoint failed while a person's data was erased: the erasure goes on, and its receipt says Google access was not revoked (the person can remove it in their Google account).",
  },
  FST_ERR_GOOGLE_TOKEN: {
    raisedBy: 'token-service',
    http: [{ status: 502, on: 'POST /users, POST /internal/users/:id/access-token/refresh' }],
    retry: 'retried if transient',
    meaning:
      "Google's token endpoint refused to refresh an access token for a reason other than a revoked grant (`invalid_client` is a configuration problem), or answered without an access token.",
  },
  FST_ERR_GOOGLE_TOKEN_REJECTED: {
    raisedBy: 'fetcher',
    http: [],
    retry: 'retried',
    meaning:
      'A Google data API answered 401 to an access token: the fetcher has the token service refresh it and tries again at once; a second 401 fails the attempt.',
  },
  FST_ERR_GOOGLE_UNAVAILABLE: {
    raisedBy: 'fetcher',
    http: [],
    retry: 'retried',
    meaning:
      'A Google data API answered 5xx or 408. While every fetch sees this (or no answer at all), Google is taken to be down and fetches wait without using attempts.',
  },
  FST_ERR_GOOGLE_UNREACHABLE: {
    raisedBy: 'fetcher, token-service',
    http: [{ status: 502, on: 'POST /users, POST /internal/users/:id/access-token/refresh' }],
    retry: 'retried',
    meaning: 'No answer from Google (DNS failure, connection refused or reset, timeout), from a data API or from the token endpoint.',
  },
  FST_ERR_GOOGLE_UNSUPPORTED: {
    raisedBy: 'fetcher',
    http: [],
    retry: 'not retried',
    meaning: 'The job asks for a data type that the Google API the user is read from does not have.',
  },
  FST_ERR_IMPORT_ABORTED: {
    raisedBy: '@fitstream/exports, token-service',
    http: [],
    retry: 'not a job error',
    meaning:
      "The upload of an export stopped before it was complete (the person's browser or connection went away): the partial file is deleted and nothing is imported.",
  },
  FST_ERR_IMPORT_BUSY: {
    raisedBy: 'token-service',
    http: [
      { status: 409, on: 'POST /users/:id/imports (an export of the person is still uploading or importing)' },
      { status: 503, on: 'POST /users/:id/imports (the process is taking in four uploads already)' },
    ],
    retry: 'not a job error',
    meaning:
      'An upload is refused for now, before any of it is read: one export per person at a time, and a few uploads per token-service process, so a crowd of uploads cannot fill the disk or starve everyone else.',
  },
  FST_ERR_IMPORT_DATE_RANGE: {
    raisedBy: '@fitstream/exports, token-service',
    http: [],
    retry: 'not a job error',
    meaning:
      'A record in an uploaded export is dated before 2000 or after the import, which no real export holds: the whole import is refused and nothing of it is released (shown on the import\u2019s status (`GET /users/:id/imports/:importId`) and the account page).',
  },
  FST_ERR_IMPORT_FAILED: {
    raisedBy: '@fitstream/exports, token-service',
    http: [],
    retry: 'not a job error',
    meaning:
      'An import failed on FitStream\u2019s side (its child process died, Redis or the queue was unreachable, or the account was deleted meanwhile): nothing of it was released, and the person can upload the export again.',
  },
  FST_ERR_IMPORT_MALFORMED: {
    raisedBy: '@fitstream/exports, token-service',
    http: [],
    retry: 'not a job error',
    meaning:
      'An uploaded export is damaged: XML or JSON that is not well-formed, a record without a readable value or date, a password-protected or unreadable file in the archive. The whole import is refused and nothing of it is released (shown on the import\u2019s status (`GET /users/:id/imports/:importId`) and the account page).',
  },
  FST_ERR_IMPORT_NOT_ZIP: {
    raisedBy: '@fitstream/exports, token-service',
    http: [],
    retry: 'not a job error',
    meaning:
      "The uploaded file is not a zip archive: the person should upload Apple Health's export.zip or Google Takeout's .zip as it is (shown on the import\u2019s status (`GET /users/:id/imports/:importId`) and the account page).",
  },
  FST_ERR_IMPORT_TOO_LARGE: {
    raisedBy: '@fitstream/exports, token-service',
    http: [{ status: 413, on: 'POST /users/:id/imports' }],
    retry: 'not a job error',
    meaning:
      'The upload is larger than IMPORT_MAX_UPLOAD_BYTES (or holds more hours of data than one import may): it is refused while it streams and nothing is kept.',
  },
  FST_ERR_IMPORT_TRUNCATED: {
    raisedBy: '@fitstream/exports, token-service',
    http: [],
    retry: 'not a job error',
    meaning:
      'The uploaded zip archive, or a file in it, is cut short (an incomplete download or upload): nothing is imported (shown on the import\u2019s status (`GET /users/:id/imports/:importId`) and the account page).',
  },
  FST_ERR_IMPORT_UNIT: {
    raisedBy: '@fitstream/exports, token-service',
    http: [],
    retry: 'not a job error',
    meaning:
      'A record in an uploaded export has a unit FitStream does not convert, or a value no body or day can have in its unit (7200 bpm): the whole import is refused rather than release a wrong figure (shown on the import\u2019s status (`GET /users/:id/imports/:importId`) and the account page).',
  },
  FST_ERR_IMPORT_UNKNOWN_FORMAT: {
    raisedBy: '@fitstream/exports, token-service',
    http: [],
    retry: 'not a job error',
    meaning:
      'The uploaded zip holds neither an Apple Health export (apple_health_export/export.xml) nor Google Fit data from Takeout (Takeout/Fit/...) (shown on the import\u2019s status (`GET /users/:id/imports/:importId`) and the account page).',
  },
  FST_ERR_IMPORT_UNSAFE_PATH: {
    raisedBy: '@fitstream/exports, token-service',
    http: [],
    retry: 'not a job error',
    meaning:
      'A file in the uploaded archive is named with an absolute path or `..`, which no real export has: the archive is refused before anything in it is read (shown on the import\u2019s status (`GET /users/:id/imports/:importId`) and the account page).',
  },
  FST_ERR_IMPORT_XML_ENTITY: {
    raisedBy: '@fitstream/exports, token-service',
    http: [],
    retry: 'not a job error',
    meaning:
      'The uploaded export.xml declares entities or an external DTD, or refers to an undeclared entity (billion laughs, XXE): refused, and nothing is ever expanded or fetched (shown on the import\u2019s status (`GET /users/:id/imports/:importId`) and the account page).',
  },
  FST_ERR_IMPORT_ZIP_BOMB: {
    raisedBy: '@fitstream/exports, token-service',
    http: [],
    retry: 'not a job error',
    meaning:
      "The uploaded archive inflates to more than an export can (IMPORT_MAX_INFLATED_BYTES in all, or IMPORT_MAX_RATIO times a file's compressed size), or lists too many files: inflating stops at the limit and nothing is imported (shown on the import\u2019s status (`GET /users/:id/imports/:importId`) and the account page).",
  },
  FST_ERR_INVALID_ADDRESS: {
    raisedBy: 'membership service (publisher package), `fitstream du`',
    http: [{ status: 400, on: 'PUT /internal/members/:ref, POST /internal/members/:ref/withdrawals, POST /internal/members/:ref/erasure' }],
    retry: 'not retried',
    meaning: 'An Ethereum address given (a member, a withdrawal recipient, a Data Union) is malformed or its mixed-case checksum is wrong: nothing is sent.',
  },
  FST_ERR_INVALID_PAYLOAD: {
    raisedBy: 'every stage',
    http: [],
    retry: 'not retried',
    meaning: "A job's data does not match its stage's schema (checked when the job is added and when it runs), or a fetch window ends in the future.",
  },
  FST_ERR_LINK_INVALID: {
    raisedBy: 'token-service',
    http: [{ status: 400, on: 'GET /reconnect, POST /reconnect, as an HTML page' }],
    retry: 'not a job error',
    meaning:
      'A signed reconnect or move link has expired, was altered, or names an account that no longer exists: nothing is changed, and the person asks for a new link.',
  },
  FST_ERR_LINK_USED: {
    raisedBy: 'token-service',
    http: [{ status: 410, on: 'GET /reconnect, POST /reconnect, as an HTML page' }],
    retry: 'not a job error',
    meaning:
      'A reconnect or move link works once and this one was already used: nothing is changed; the person asks for a new link or signs in from the start page.',
  },
  FST_ERR_NOISE_PARAMETER: {
    raisedBy: 'anonymizer',
    http: [],
    retry: 'not retried',
    meaning:
      "A privacy policy's noise parameter is outside what the anonymizer's exact sampler can draw: a policy that slipped past validation; fix the policy.",
  },
  FST_ERR_NOTHING_TO_WITHDRAW: {
    raisedBy: 'membership service (publisher package)',
    http: [{ status: 409, on: 'POST /internal/members/:ref/withdrawals' }],
    retry: 'not retried',
    meaning: 'A withdrawal of nothing: the member has no withdrawable earnings yet, so no transaction is sent.',
  },
  FST_ERR_NOT_A_DATA_UNION: {
    raisedBy: 'membership service (publisher package), `fitstream du`',
    http: [{ status: 502, on: 'the /internal/members routes' }],
    retry: 'not retried',
    meaning: 'The address given as the Data Union holds no contract on this chain, or one that does not answer as a Data Union does: check DATA_UNION_ADDRESS.',
  },
  FST_ERR_PASSKEY_CHALLENGE: {
    raisedBy: 'token-service',
    http: [{ status: 400, on: 'POST /passkey/register, POST /passkey/sign-in' }],
    retry: 'not a job error',
    meaning:
      'The passkey response answers no challenge this browser was given: the challenge was already used (a replayed response), is over 5 minutes old, or was issued to another browser session. Nothing is created or signed in; the person starts again.',
  },
  FST_ERR_PASSKEY_INVALID: {
    raisedBy: 'token-service',
    http: [{ status: 400, on: 'POST /passkey/register, POST /passkey/sign-in' }],
    retry: 'not a job error',
    meaning:
      "The passkey response failed WebAuthn verification (its signature, its flags or its form): nothing is created or signed in. The person's own authenticator does not produce this; a forged or altered response does.",
  },
  FST_ERR_PASSKEY_ORIGIN: {
    raisedBy: 'token-service',
    http: [{ status: 400, on: 'POST /passkey/register, POST /passkey/sign-in' }],
    retry: 'not a job error',
    meaning:
      'The passkey response was made for another site: its origin is not PASSKEY_ORIGIN, or its authenticator data is for another RP ID than PASSKEY_RP_ID (a phishing page relaying the ceremony, or a misconfigured deployment). Nothing is created or signed in.',
  },
  FST_ERR_PASSKEY_REPLAY: {
    raisedBy: 'token-service',
    http: [{ status: 400, on: 'POST /passkey/sign-in' }],
    retry: 'not a job error',
    meaning:
      "The passkey's signature counter did not go up since its last sign-in, the sign of a cloned authenticator or a replayed response: refused, and the stored counter is left as it is.",
  },
  FST_ERR_PASSKEY_UNKNOWN: {
    raisedBy: 'token-service',
    http: [{ status: 401, on: 'POST /passkey/sign-in' }],
    retry: 'not a job error',
    meaning:
      'The passkey is not registered here, or its account was deleted: nobody is signed in. The person creates an account, or signs in with another passkey.',
  },
  FST_ERR_PASSKEY_WRONG_ACCOUNT: {
    raisedBy: 'token-service',
    http: [{ status: 403, on: 'POST /passkey/register, POST /passkey/sign-in' }],
    retry: 'not a job error',
    meaning:
      "The passkey belongs to another account: a sign-in response naming another account's user handle than its credential's, or a registration of a credential that is already registered. Nobody is signed in and nothing is created.",
  },
  FST_ERR_PUBLISH_JOURNAL: {
    raisedBy: 'publisher',
    http: [],
    retry: 'retried',
    meaning: "The publisher's delivery journal in Redis failed during a publish; the retry resumes from what the journal noted, so no message is sent twice.",
  },
  FST_ERR_PUBLISH_LEASE_LOST: {
    raisedBy: 'publisher',
    http: [],
    retry: 'retried',
    meaning:
      "Another publisher process took over this job's lease (this one stalled past it): this attempt stops and leaves the job's messages to that process.",
  },
  FST_ERR_RATE_LIMITED: {
    raisedBy: 'token-service',
    http: [
      { status: 429, on: 'any route with credentials, after too many failed authentications' },
      { status: 429, on: 'the pages and GET /oauth/callback past their per-address limits; consent trips past the per-account limit, as an HTML page' },
    ],
    retry: 'not a job error',
    meaning:
      'Too many requests: from one address past RATE_LIMIT_AUTH_FAILURES failed authentications in 15 minutes (every request with credentials is refused then, even with the right ones) or past RATE_LIMIT_PAGES_PER_MINUTE or RATE_LIMIT_CALLBACK_PER_MINUTE, or from one account past RATE_LIMIT_RECONSENTS_PER_HOUR trips to Google\u2019s consent screen; `Retry-After` says when to try again.',
  },
  FST_ERR_REAUTH_REQUIRED: {
    raisedBy: 'token-service',
    http: [
      { status: 400, on: 'POST /users' },
      { status: 409, on: 'POST /internal/users/:id/access-token/refresh' },
    ],
    retry: 'not retried',
    meaning:
      "Google refused the person's refresh token (`invalid_grant`: revoked or expired): their syncs pause (state `reauth_required`) until they reconnect, and nothing is lost meanwhile.",
  },
  FST_ERR_STALLED: {
    raisedBy: 'every stage',
    http: [],
    retry: 'not retried',
    meaning:
      'Workers died or stalled holding the job more often than maxStalledCount allows, so BullMQ failed it: it is dead-lettered as not permanent, to replay once the cause is fixed.',
  },
  FST_ERR_STREAMR_ENCRYPTION_POLICY_VIOLATION: { raisedBy: 'publisher', http: [], retry: 'not retried', meaning: STREAMR_REFUSED },
  FST_ERR_STREAMR_INVALID_ARGUMENT: { raisedBy: 'publisher', http: [], retry: 'not retried', meaning: STREAMR_REFUSED },
  FST_ERR_STREAMR_INVALID_MESSAGE_CONTENT: { raisedBy: 'publisher', http: [], retry: 'not retried', meaning: STREAMR_REFUSED },
  FST_ERR_STREAMR_INVALID_PARTITION: { raisedBy: 'publisher', http: [], retry: 'not retried', meaning: STREAMR_REFUSED },
  FST_ERR_STREAMR_MISSING_PERMISSION: {
    raisedBy: 'publisher',
    http: [],
    retry: 'not retried',
    meaning: "The publisher's key has no PUBLISH permission on the stream: run `fitstream streams provision`, then replay the dead letters.",
  },
  FST_ERR_STREAMR_NOT_FOUND: {
    raisedBy: 'publisher',
    http: [],
    retry: 'not retried',
    meaning: 'The stream does not exist: run `fitstream streams provision`, then replay the dead letters.',
  },
  FST_ERR_STREAMR_STREAM_NOT_FOUND: {
    raisedBy: 'publisher',
    http: [],
    retry: 'not retried',
    meaning: 'The stream does not exist: run `fitstream streams provision`, then replay the dead letters.',
  },
  FST_ERR_STREAMR_UNAVAILABLE: {
    raisedBy: 'publisher',
    http: [],
    retry: 'retried',
    meaning: 'Any other publish failure (the network, no peers, a timeout).',
  },
  FST_ERR_STREAMR_UNSUPPORTED_OPERATION: { raisedBy: 'publisher', http: [], retry: 'not retried', meaning: STREAMR_REFUSED },
  FST_ERR_UNEXPECTED: {
    raisedBy: 'every stage',
    http: [],
    retry: 'retried',
    meaning: 'An error FitStream does not name (a bug, a Redis command that failed): retried, then dead-lettered with its message.',
  },
  FST_ERR_UNRECOVERABLE: {
    raisedBy: 'every stage',
    http: [],
    retry: 'not retried',
    meaning: "A processor threw BullMQ's own UnrecoverableError rather than a named FitStream error: dead-lettered at once.",
  },
  FST_ERR_USER_GONE: {
    raisedBy: 'fetcher, token-service',
    http: [],
    retry: 'discarded',
    meaning: 'The user was erased (or erased during a token refresh): the job has nothing left to do.',
  },
  FST_ERR_USER_PAUSED: {
    raisedBy: 'fetcher',
    http: [],
    retry: 'discarded',
    meaning:
      'The user must reconnect Google, or is read from an API that has closed: the job is dropped, and their data is fetched from their cursor once they are active again.',
  },
  FST_ERR_VALIDATION: {
    raisedBy: 'every HTTP API',
    http: [{ status: 400, on: 'any route' }],
    retry: 'not a job error',
    meaning: "A request failed its route's JSON schema (Fastify's own code), or `GET /users` was given a cursor it did not hand out.",
  },
  FST_ERR_WRONG_ACCOUNT: {
    raisedBy: 'token-service',
    http: [{ status: 403, on: 'GET /oauth/callback, as an HTML page' }],
    retry: 'not a job error',
    meaning:
      'The person signed in at Google with another account than the one their FitStream account was connected with: nothing is changed, and the access Google just gave is handed back.',
  },
} as const satisfies Record<string, ErrorCatalogueEntry>

export type ErrorCode = keyof typeof ERROR_CATALOGUE

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CATALOGUE, code)
}

/** The first HTTP status the catalogue gives the code, if any. */
export function httpStatusOf(code: ErrorCode): number | undefined {
  const answers: readonly HttpAnswer[] = ERROR_CATALOGUE[code].http
  return answers[0]?.status
}
