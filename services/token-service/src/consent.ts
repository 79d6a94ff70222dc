import { DATA_TYPES, FIT_SCOPE_PREFIX, dataApiOfScopes, readableIn, scopesFor, type DataTypeKey, type GoogleDataApi, type ScopeGroup } from '@fitstream/shared'

export interface ConsentGroup {
  readonly group: ScopeGroup
  readonly title: string
  /** What the person agrees to sell, in plain words. */
  readonly description: string
  readonly dataTypes: readonly DataTypeKey[]
}

const TEXT: Readonly<Record<ScopeGroup, { title: string; description: string }>> = {
  activity: { title: 'Activity', description: 'steps, calories burned, move minutes, heart points and time spent walking, running or cycling' },
  heart_rate: { title: 'Heart rate', description: 'average, highest and lowest heart rate per hour' },
  body: { title: 'Body', description: 'weight, height and body fat' },
  sleep: { title: 'Sleep', description: 'minutes of light, deep and REM sleep and time awake' },
  location: { title: 'Distance and speed', description: 'distance covered and speed per hour; never where you were' },
  blood_pressure: { title: 'Blood pressure', description: 'systolic and diastolic readings per hour' },
  oxygen_saturation: { title: 'Blood oxygen', description: 'oxygen saturation per hour' },
}

/**
 * The choices on the onboarding page: one per Google scope group, because consent at Google is per
 * scope. Location-bearing types are never part of a group: GPS positions are not sold.
 */
export const CONSENT_GROUPS: readonly ConsentGroup[] = (Object.keys(TEXT) as ScopeGroup[]).map((group) => ({
  group,
  ...TEXT[group],
  dataTypes: DATA_TYPES.filter((t) => t.scope === group && !('sensitive' in t && t.sensitive)).map((t) => t.key),
}))

export const CONSENT_GROUP_NAMES = CONSENT_GROUPS.map((g) => g.group)

/** How a group reads where the Health API has less of it than Fit. */
const HEALTH_DESCRIPTIONS: Partial<Record<ScopeGroup, string>> = {
  activity: 'steps, calories burned, active minutes, heart points and minutes of recorded workouts (walking, running, cycling, swimming or strength training)',
}

/** The groups offered when grants are for this API: each with the types the API has, empty groups left out. */
export function consentGroups(api: GoogleDataApi): ConsentGroup[] {
  return CONSENT_GROUPS.map((g) => ({
    ...g,
    ...(api === 'health' && HEALTH_DESCRIPTIONS[g.group] !== undefined ? { description: HEALTH_DESCRIPTIONS[g.group]! } : {}),
    dataTypes: g.dataTypes.filter((key) => readableIn(key, api)),
  })).filter((g) => g.dataTypes.length > 0)
}

export function dataTypesForGroups(groups: readonly string[], api: GoogleDataApi): DataTypeKey[] {
  const chosen = new Set(groups)
  return consentGroups(api)
    .filter((g) => chosen.has(g.group))
    .flatMap((g) => g.dataTypes)
}

/** The groups a user's consent touches (for ticking the boxes on their page). */
export function groupsOf(dataTypes: readonly DataTypeKey[]): Set<ScopeGroup> {
  const types = new Set<string>(dataTypes)
  return new Set(CONSENT_GROUPS.filter((g) => g.dataTypes.some((t) => types.has(t))).map((g) => g.group))
}

/**
 * Scopes of `api` the data types need that were not granted: these need Google's consent first. A
 * grant for the other API has none of them, so moving a person from Fit to Health goes through here.
 */
export function missingScopes(dataTypes: readonly DataTypeKey[], granted: readonly string[], api: GoogleDataApi): string[] {
  const have = new Set(granted.map(readEquivalent))
  return scopesFor(dataTypes, api).filter((scope) => !have.has(scope))
}

/** The chosen data types Google actually granted access to in `api` (people may untick scopes at Google). */
export function grantedDataTypes(dataTypes: readonly DataTypeKey[], granted: readonly string[], api: GoogleDataApi): DataTypeKey[] {
  return dataTypes.filter((key) => readableIn(key, api) && missingScopes([key], granted, api).length === 0)
}

// A write scope includes reading, as at Google.
function readEquivalent(scope: string): string {
  return scope.startsWith(FIT_SCOPE_PREFIX) ? scope.replace(/\.write$/, '.read') : scope
}

/**
 * Whether a person should move off Google Fit: the deployment reads the Health API, their grant is
 * still for Fit, and they sell something the Health API has (otherwise Google would be asked for no
 * scope at all).
 */
export function mustMoveToHealth(user: { readonly scopes: readonly string[]; readonly dataTypes: readonly DataTypeKey[] }, api: GoogleDataApi): boolean {
  return api === 'health' && dataApiOfScopes(user.scopes, api) === 'fit' && user.dataTypes.some((key) => readableIn(key, 'health'))
}
