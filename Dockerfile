# syntax=docker/dockerfile:1
# Node 24 LTS (glibc, Debian 12). The pinned uWebSockets.js build has no binary for Node 24,
# so the image runs the node:http + ws transport (README: Supported runtimes) and says so in
# one log line at start.
ARG NODE_IMAGE=node:24.22.3-bookworm-slim

# Build stage: compile TypeScript with the dev dependencies.
FROM ${NODE_IMAGE} AS build
# better-sqlite3 is native: node-gyp builds it when no prebuilt binary can be fetched.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY static ./static
RUN npm run build && npm prune --omit=dev

# Runtime stage. The application files stay root-owned (read-only to the server); the one
# writable place is /app/data (uploaded files under data/files, the default settings' paths),
# owned by the non-root `node` user and declared a volume. Named volumes mounted there (or at
# data/files) start with that ownership, so the first upload works.
FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    ROOMCAST_HOST=0.0.0.0 \
    ROOMCAST_PORT=3100
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/static ./static
# The embedded default keeps its SQLite file (data/roomcast.db) and uploads (data/files) here.
RUN mkdir -p /app/data/files && chown -R node:node /app/data
VOLUME ["/app/data"]
USER node
EXPOSE 3100
# SIGTERM drains (readiness off, sockets closed so clients reconnect elsewhere); give the
# container longer than ROOMCAST_SHUTDOWN_TIMEOUT_MS (docker stop -t / stop_grace_period).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD node -e "process.env.NODE_TLS_REJECT_UNAUTHORIZED='0';fetch((process.env.ROOMCAST_TLS_CERT_FILE?'https':'http')+'://127.0.0.1:'+(process.env.ROOMCAST_PORT||3100)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "dist/main.js"]
