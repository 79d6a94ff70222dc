import { pino, type Logger, type LoggerOptions } from 'pino'

/** Paths pino replaces with [redacted] wherever they appear in a log line. */
export const REDACTED_PATHS = [
  'refreshToken',
  'accessToken',
  'access_token',
  'refresh_token',
  'id_token',
  'token',
  'authorization',
  'password',
  'privateKey',
  'secret',
  'clientSecret',
  'client_secret',
  '*.refreshToken',
  '*.accessToken',
  '*.access_token',
  '*.refresh_token',
  '*.token',
  '*.authorization',
  '*.privateKey',
  '*.secret',
  '*.clientSecret',
  'req.headers.authorization',
  'req.headers.cookie',
  'config.headers.Authorization',
  'response.config.headers.Authorization',
  'err.config',
  'err.response.config',
]

export function createLogger(service: string, level: LoggerOptions['level'] = 'info'): Logger {
  return pino({
    name: service,
    level,
    base: { service },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  })
}

export type { Logger }
