import { ConfigError, FitStreamError } from '@fitstream/shared'

/** The privacy policy file is missing, unreadable or invalid: the anonymizer refuses to start (exit 78). */
export class PolicyError extends ConfigError {}

/** A noise parameter is outside what the sampler can draw exactly (a policy that slipped past validation). */
export class NoiseParameterError extends FitStreamError {
  constructor(message: string) {
    super('FST_ERR_NOISE_PARAMETER', message, { permanent: true })
  }
}
