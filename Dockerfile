# syntax=docker/dockerfile:1
# One image for the four FitStream services; compose picks the service with `command`.

FROM node:22-bookworm-slim AS build
WORKDIR /app
# sqlite3 (pulled in by the Streamr SDK) compiles from source when no prebuilt binary can be fetched.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.base.json tsconfig.json ./
COPY stubs ./stubs
COPY packages/shared/package.json packages/shared/
COPY packages/fake-google/package.json packages/fake-google/
COPY packages/streamr-local/package.json packages/streamr-local/
COPY packages/devstack/package.json packages/devstack/
COPY services/token-service/package.json services/token-service/
COPY services/fetcher/package.json services/fetcher/
COPY services/anonymizer/package.json services/anonymizer/
COPY services/publisher/package.json services/publisher/
COPY tests/package.json tests/
RUN npm ci --no-audit --no-fund
COPY packages ./packages
COPY services ./services
RUN npx tsc -b packages/shared services/token-service services/fetcher services/anonymizer services/publisher \
 && npm prune --omit=dev --no-audit --no-fund

FROM node:22-bookworm-slim AS runtime
ENV NODE_ENV=production
# A heap cap well inside compose's 512 MB limit: V8 collects instead of growing lazily, and a 4 MB young
# generation instead of 16 MB took some 20 MB off each service's peak RSS (docs/benchmark-analysis.md).
ENV NODE_OPTIONS="--max-old-space-size=160 --max-semi-space-size=4"
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/stubs ./stubs
COPY --from=build --chown=node:node /app/packages/shared ./packages/shared
COPY --from=build --chown=node:node /app/services ./services
# The publisher's Streamr key store (a volume in compose) must be writable by the service user.
RUN mkdir -p /data && chown node:node /data
USER node
# Overridden per service in docker-compose.yml.
CMD ["node", "services/token-service/dist/main.js"]
