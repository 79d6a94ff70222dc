import {
  DATA_TYPES,
  FIT_SCOPE_PREFIX,
  HEALTH_SETTINGS_SCOPE,
  dataApiOfScopes,
  readableIn,
  scopesFor,
  type DataTypeKey,
  type GoogleDataApi,
  type ScopeGroup,
} from '@fitstream/shared'

export interface ConsentGroup {
  readonly group: ScopeGroup
  readonly title: string
  /** What the person agrees to sell, in plain words: by default only as averages over many people. */
  readonly description: string
  readonly dataTypes: readonly DataTypeKey[]
}

// Every type is sold as cohorts (PRIVACY.md, "In plain words"), so no group is described "per hour".
const TEXT: Readonly<Record<ScopeGroup, { title: string; description: string }>> = {
  activity: {
    title: 'Activity',
    description: 'steps, calories burned, move minutes, heart points and minutes walking, running or cycling, as daily averages over many people',
  },
  heart_rate: { title: 'Heart rate', description: 'average heart rate, as daily averages over many people' },
  body: { title: 'Body', description: 'weight and body fat (weekly) and height (monthly), as averages over many people' },
  sleep: { title: 'Sleep', description: 'minutes of light, deep and REM sleep and time awake, as daily averages over many people' },
  location: { title: 'Distance and speed', description: 'distance covered and speed, as daily averages over many people; never where you were' },
  blood_pressure: { title: 'Blood pressure', description: 'systolic and diastolic readings, as weekly averages over many people' },
  oxygen_saturation: { title: 'Blood oxygen', description: 'oxygen saturation, as weekly averages over many people' },
}

/**
 * The cohort window of each type the pages offer, as the default privacy policy
 * (services/anonymizer/policies/default.yaml) sets it; a test holds the two together.
 */
export const COHORT_WINDOWS: Readonly<Partial<Record<DataTypeKey, 'day' | 'week' | 'month'>>> = {
  steps: 'day',
  calories: 'day',
  heart_rate: 'day',
  distance: 'day',
  active_minutes: 'day',
  heart_minutes: 'day',
  weight: 'week',
  height: 'month',
  body_fat: 'week',
  sleep: 'day',
  activity: 'day',
  speed: 'day',
  blood_pressure: 'week',
  oxygen_saturation: 'week',
  workouts: 'day',
  resting_heart_rate: 'week',
  heart_rate_variability: 'week',
  vo2_max: 'month',
  respiratory_rate: 'month',
  floors: 'week',
}

/** What everyone's data becomes, in the words PRIVACY.md gives the pages. */
export const COHORT_WORDS = 'Averages over many people, with random noise added; never your own records.'

/** What opting in to individual records means, in the words PRIVACY.md gives the pages. */
export const INDIVIDUAL_WORDS =
  'pseudonymised, not anonymous: someone who knows your routine may find your records. Your records of every type share one code each month.'

/**
 * The types the default privacy policy also sells as individual hourly records, each only for the
 * people who opt in to it (`consent: opt-in`), and how the opt-in names them. A test holds these to
 * the policy. Heart rate's records hold the hour's mean only.
 */
export const INDIVIDUAL_OFFERS: Readonly<Partial<Record<DataTypeKey, string>>> = {
  steps: 'steps',
  calories: 'calories burned',
  active_minutes: 'active (move) minutes',
  heart_minutes: 'heart points',
  heart_rate: 'heart rate (average heart rate per hour, never the highest or lowest)',
}

export const INDIVIDUAL_TYPE_NAMES = Object.keys(INDIVIDUAL_OFFERS) as DataTypeKey[]

/** The individual-record opt-ins of a group: the offered types it holds, in the catalogue's order. */
export function individualOffers(group: ConsentGroup): DataTypeKey[] {
  return group.dataTypes.filter((key) => INDIVIDUAL_OFFERS[key] !== undefined)
}

/** The types chosen as individual records that are offered as such and sold at all: anything else is dropped. */
export function individualTypesFor(chosen: readonly string[], dataTypes: readonly DataTypeKey[]): DataTypeKey[] {
  const wanted = new Set(chosen)
  return dataTypes.filter((key) => wanted.has(key) && INDIVIDUAL_OFFERS[key] !== undefined)
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
  activity:
    'floors climbed (weekly) and VO2 max, your cardio fitness score (monthly); steps, calories burned, active minutes, heart points and minutes of recorded workouts (walking, running, cycling, swimming or strength training), as daily averages over many people',
  heart_rate:
    'average heart rate (daily), resting heart rate and heart-rate variability (weekly) and breathing rate during sleep (monthly), as averages over many people',
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

/**
 * Scopes asked for beside those of the data types, which a person may withhold without losing
 * anything they chose (missingScopes never asks for them): in the Health API, their settings, for
 * the time zone they are in now.
 */
export function optionalScopes(api: GoogleDataApi): string[] {
  return api === 'health' ? [HEALTH_SETTINGS_SCOPE] : []
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
