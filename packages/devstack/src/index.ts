export * from './secrets.js'
export * from './service-process.js'
export * from './stack.js'
export * from './subscriber.js'
