/** Where the token service serves Bull Board (kept in step with services/token-service). */
export const BULL_BOARD_PATH = '/admin/queues'
