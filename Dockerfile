# syntax=docker/dockerfile:1
#
# AsyncQueue image: one image, two production entry points.
#   API:    node dist/src/api/main.js     (the default CMD)
#   Worker: node dist/src/worker/main.js  (docker-compose.yml overrides the command)
#
# Debian (glibc), not Alpine: the Temporal worker's native bridge (@temporalio/core-bridge)
# ships prebuilt binaries for glibc only.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: full install (TypeScript is a devDependency) and compile to dist/ ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# Everything .dockerignore lets through (tsconfig.json, src/, workflows/, activities/, ...).
COPY . .
RUN npm run build

# ---- runtime: production dependencies and the compiled output only ----
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# The published package is the light client SDK, so the server's dependencies are its optional
# peer dependencies (and dev dependencies of this repository); the image installs them as locked.
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm install --no-save --omit=dev --no-audit --no-fund \
      $(node -p "Object.entries(require('./package.json').peerDependencies).map(([name, range]) => name + '@' + range).join(' ')") \
 && npm cache clean --force
COPY --from=build /app/dist ./dist

# ASYNCQUEUE_DATA_DIR must be writable by the unprivileged user. In the compose topology every
# worker gets ASYNCQUEUE_SIGNING_SECRET from the environment, so nothing needs to persist here.
RUN mkdir -p /data && chown node:node /data

ENV HOST=0.0.0.0 \
    PORT=3000 \
    ASYNCQUEUE_DATA_DIR=/data

USER node
EXPOSE 3000
CMD ["node", "dist/src/api/main.js"]
