# One image for the four FitStream services and the `fitstream` operator command; compose picks the
# service with `command`. Node 24 is the LTS FitStream is tested on.
ARG NODE_IMAGE=node:24-bookworm-slim

# The build context, and apart from it the workspaces' manifests and the lockfile alone: the
# dependency layers below depend on those only, so a change to the sources reuses them.
FROM ${NODE_IMAGE} AS sources
WORKDIR /src
COPY . .
RUN mkdir /manifests \
 && cp package.json package-lock.json /manifests/ \
 && node -e "for (const w of require('./package.json').workspaces) console.log(w)" | while read -r folder; do \
      mkdir -p "/manifests/$folder" && cp "$folder/package.json" "/manifests/$folder/"; \
    done \
 && cp -r packages/node-datachannel-compat/. /manifests/packages/node-datachannel-compat/

FROM ${NODE_IMAGE} AS toolchain
WORKDIR /app
# sqlite3 (pulled in by the Streamr SDK) compiles from source when no prebuilt binary can be fetched.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY --from=sources /manifests ./

# Compiles the workspaces the services run, with every dependency, TypeScript included, and lays out
# what each needs at run time in /runtime.
FROM toolchain AS build
RUN npm ci --no-audit --no-fund
COPY --from=sources /src ./
RUN npx tsc -b $(node deploy/image-workspaces.mjs typescript) \
 && node deploy/image-workspaces.mjs assemble /runtime \
 && cp package.json /runtime/ && cp -r bin /runtime/

# The production dependencies of those workspaces and nothing else: no test kits (the local chain,
# the fake Google), no root tooling.
FROM toolchain AS production-dependencies
COPY deploy/image-workspaces.mjs deploy/
RUN npm ci --omit=dev --no-audit --no-fund $(node deploy/image-workspaces.mjs npm-args) \
 && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
# The Streamr SDK logs through its own pino: plain JSON lines like the services' own, not pino-pretty.
ENV DISABLE_PRETTY_LOG=true
# A heap cap well inside compose's 512 MB limit: V8 collects instead of growing lazily, and a 4 MB young
# generation instead of Node 24's default (up to 32 MB a semi-space, with the machine's memory) took some
# 20 MB off each service's peak RSS (docs/benchmark-analysis.md).
ENV NODE_OPTIONS="--max-old-space-size=160 --max-semi-space-size=4"
# glibc gives each thread that allocates (the network node's WebRTC threads, V8's and libuv's workers)
# an arena of its own, up to eight a core, and keeps what it freed there: two arenas took 10-15 MB
# off the publisher's peak RSS (docs/performance.md).
ENV MALLOC_ARENA_MAX=2
# The benchmark starts the services with this stage's ENV lines (packages/devstack/src/image-env.ts):
# a runtime setting goes here, once.
WORKDIR /app
# Everything the service user runs is root's and read-only to it; only /data is its own.
COPY --from=production-dependencies /app/node_modules ./node_modules
COPY --from=build /runtime ./
# `docker compose run --rm publisher fitstream streams provision` and the other operator commands.
RUN ln -s /app/bin/fitstream.mjs /usr/local/bin/fitstream \
 && mkdir -p /data && chown node:node /data
USER node
# Overridden per service in docker-compose.yml.
CMD ["node", "services/token-service/dist/main.js"]
