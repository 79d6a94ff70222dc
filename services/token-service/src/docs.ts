import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import { SESSION_COOKIE } from './session-http.js'

export const DOCS_PATH = '/docs'

/** OpenAPI from the routes' own JSON schemas; must be registered before the routes it describes. */
export async function registerApiDocs(app: FastifyInstance, publicUrl: string): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'FitStream token service',
        version: '1',
        description:
          "Users, consent and Google tokens. Operators authenticate with the admin bearer token; a person's browser session may act only on its own user. No answer ever contains a token.",
      },
      servers: [{ url: publicUrl }],
      tags: [
        { name: 'users', description: 'Users, consent and erasure' },
        { name: 'pages', description: 'HTML pages people use (onboarding, callback, their account)' },
        { name: 'passkeys', description: 'Accounts with a passkey instead of Google: the WebAuthn ceremonies the passkey page runs' },
        { name: 'internal', description: 'Calls between FitStream services' },
        { name: 'dead letters', description: 'Jobs that failed for good: inspect, replay, purge' },
      ],
      components: {
        securitySchemes: {
          admin: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN' },
          internal: { type: 'http', scheme: 'bearer', description: 'INTERNAL_API_TOKEN' },
          session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE, description: 'the signed session cookie set by the onboarding pages' },
        },
      },
    },
  })
  await app.register(swaggerUi, { routePrefix: DOCS_PATH })
}
