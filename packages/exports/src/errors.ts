import { FitStreamError } from '@fitstream/shared/errors'

/**
 * Why an uploaded export was refused. Every code is in the shared error catalogue; the message is
 * safe to show the person (it never quotes their data, a device or a file name from the archive).
 */
export type ImportErrorCode =
  | 'FST_ERR_IMPORT_NOT_ZIP'
  | 'FST_ERR_IMPORT_TRUNCATED'
  | 'FST_ERR_IMPORT_UNKNOWN_FORMAT'
  | 'FST_ERR_IMPORT_ZIP_BOMB'
  | 'FST_ERR_IMPORT_UNSAFE_PATH'
  | 'FST_ERR_IMPORT_XML_ENTITY'
  | 'FST_ERR_IMPORT_MALFORMED'
  | 'FST_ERR_IMPORT_DATE_RANGE'
  | 'FST_ERR_IMPORT_UNIT'
  | 'FST_ERR_IMPORT_TOO_LARGE'
  | 'FST_ERR_IMPORT_ABORTED'
  | 'FST_ERR_IMPORT_FAILED'

/** An export that can't be imported as it is: trying the same bytes again can't succeed. */
export class ImportError extends FitStreamError {
  declare readonly code: ImportErrorCode

  constructor(code: ImportErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { permanent: true, ...options })
  }
}
