import { describe, expect, it } from 'vitest'
import { imageEnvironment } from '../src/image-env.js'

describe('imageEnvironment', () => {
  it("reads the last stage's ENV lines, quoted or not, and no earlier stage's", () => {
    const dockerfile = [
      'FROM node:24 AS build',
      'ENV BUILD_ONLY=1',
      'FROM node:24-slim AS runtime',
      'ENV NODE_ENV=production',
      '# a comment',
      'ENV NODE_OPTIONS="--max-old-space-size=160 --max-semi-space-size=4"',
      'WORKDIR /app',
    ].join('\n')
    expect(imageEnvironment(dockerfile)).toEqual({ NODE_ENV: 'production', NODE_OPTIONS: '--max-old-space-size=160 --max-semi-space-size=4' })
  })

  it('refuses an ENV line it could read differently from Docker', () => {
    expect(() => imageEnvironment('FROM node:24\nENV A=1 B=2')).toThrow('ENV KEY=value')
    expect(() => imageEnvironment('FROM node:24\nENV A 1')).toThrow('ENV KEY=value')
  })

  it("gives the services the repository image's heap flags and JSON logs", () => {
    const env = imageEnvironment()
    expect(env.NODE_OPTIONS).toContain('--max-old-space-size=')
    expect(env.DISABLE_PRETTY_LOG).toBe('true')
  })
})
