# One image for the four FitStream services and the `fitstream` operator command; compose picks the
# service with `command`. Node 24 is the LTS FitStream is tested on.
ARG NODE_IMAGE=node:24-bookworm-slim

# Manifests only, so the dependency layers are rebuilt only when a manifest or the lockfile changes.
FROM ${NODE_IMAGE} AS manifests
WORKDIR /app
# sqlite3 (pulled in by the Streamr SDK) compiles from source when no prebuilt binary can be fetched.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# The compatibility package is a few plain files that npm links in place of node-datachannel.
COPY packages/node-datachannel-compat packages/node-datachannel-compat
COPY packages/shared/package.json packages/shared/
COPY packages/fake-google/package.json packages/fake-google/
COPY packages/streamr-local/package.json packages/streamr-local/
COPY packages/devstack/package.json packages/devstack/
COPY services/token-service/package.json services/token-service/
COPY services/fetcher/package.json services/fetcher/
COPY services/anonymizer/package.json services/anonymizer/
COPY services/publisher/package.json services/publisher/
COPY tests/package.json tests/

# Compiles the services with every dependency, TypeScript included.
FROM manifests AS build
RUN npm ci --no-audit --no-fund
COPY tsconfig.base.json tsconfig.json ./
COPY packages ./packages
COPY services ./services
RUN npx tsc -b packages/shared services/token-service services/fetcher services/anonymizer services/publisher

# What the services need at run time and nothing else: the services' own production dependencies,
# without the test kits (the local chain, the fake Google) or the root's tooling.
FROM manifests AS production-dependencies
RUN npm ci --omit=dev --no-audit --no-fund \
      -w packages/shared -w services/token-service -w services/fetcher -w services/anonymizer -w services/publisher \
 && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
# The Streamr SDK logs through its own pino: plain JSON lines like the services' own, not pino-pretty.
ENV DISABLE_PRETTY_LOG=true
# A heap cap well inside compose's 512 MB limit: V8 collects instead of growing lazily, and a 4 MB young
# generation instead of 16 MB took some 20 MB off each service's peak RSS (docs/benchmark-analysis.md).
ENV NODE_OPTIONS="--max-old-space-size=160 --max-semi-space-size=4"
WORKDIR /app
# Everything the service user runs is owned by root and read-only to it; only /data is its own.
COPY --from=production-dependencies /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY packages/node-datachannel-compat ./packages/node-datachannel-compat
COPY --from=build /app/packages/shared/package.json ./packages/shared/
COPY --from=build /app/packages/shared/dist ./packages/shared/dist
COPY --from=build /app/services/token-service/package.json ./services/token-service/
COPY --from=build /app/services/token-service/dist ./services/token-service/dist
COPY --from=build /app/services/fetcher/package.json ./services/fetcher/
COPY --from=build /app/services/fetcher/dist ./services/fetcher/dist
COPY --from=build /app/services/anonymizer/package.json ./services/anonymizer/
COPY --from=build /app/services/anonymizer/dist ./services/anonymizer/dist
COPY --from=build /app/services/anonymizer/policies ./services/anonymizer/policies
COPY --from=build /app/services/publisher/package.json ./services/publisher/
COPY --from=build /app/services/publisher/dist ./services/publisher/dist
# `docker compose run --rm publisher fitstream streams provision` and the other operator commands.
RUN ln -s /app/bin/fitstream.mjs /usr/local/bin/fitstream \
 && mkdir -p /data && chown node:node /data
USER node
# Overridden per service in docker-compose.yml.
CMD ["node", "services/token-service/dist/main.js"]
