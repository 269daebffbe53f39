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
# /health over HTTP, or over HTTPS when TLS_CERT_FILE is set (its own certificate, not verified: it is
# loopback); with mutual TLS the check has no client certificate: a TLS 1.3 handshake (which a
# client completes before the server asks for its certificate) serving TLS_CERT_FILE's certificate counts.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "const e=process.env,p=+(e.PORT||8080),no=()=>process.exit(1);if(!e.TLS_CERT_FILE)fetch('http://127.0.0.1:'+p+'/health').then(r=>process.exit(r.ok?0:1),no);else if(e.TLS_CLIENT_CA_FILE){const s=require('tls').connect({host:'127.0.0.1',port:p,rejectUnauthorized:false,minVersion:'TLSv1.3'},()=>{let f;try{f=new (require('crypto').X509Certificate)(require('fs').readFileSync(e.TLS_CERT_FILE)).fingerprint256}catch{no()}process.exit(s.getPeerCertificate().fingerprint256===f?0:1)}).on('error',no)}else require('https').get({host:'127.0.0.1',port:p,path:'/health',rejectUnauthorized:false},r=>process.exit(r.statusCode===200?0:1)).on('error',no)"]
CMD ["node", "dist/runtime.mjs"]
