export * from 'node-datachannel-native'
export declare function initLogger(level: string, callback?: (level: string, message: string) => void): void
