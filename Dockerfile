# syntax=docker/dockerfile:1
# Multi-stage: build dist/ with the dev toolchain, ship dist/ alone on a slim Node 20 base.
# Multi-arch: docker buildx build --platform linux/arm64,linux/amd64 .
FROM --platform=$BUILDPLATFORM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json build.mjs ./
COPY functions ./functions
COPY runtime ./runtime
COPY shared ./shared
# The artifacts are plain JS with no native code, so building on the build platform serves every target.
RUN node build.mjs

FROM node:20-bookworm-slim
# GLIBC_TUNABLES: the allocator settings streaming needs (runtime/memory-settings.ts).
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    CACHE_DIR=/var/lib/loader \
    FUNCTIONS_DIR=/app/dist \
    GLIBC_TUNABLES=glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=4194304:glibc.malloc.trim_threshold=33554432
WORKDIR /app
RUN groupadd --system loader && useradd --system --gid loader --home /app loader \
 && mkdir -p /var/lib/loader && chown loader:loader /var/lib/loader
COPY --from=build --chown=loader:loader /src/dist ./dist
USER loader
VOLUME ["/var/lib/loader"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "dist/runtime.mjs"]
