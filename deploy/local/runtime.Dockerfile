# A stand-in for gcr.io/distroless/cc-debian12:nonroot, made from a Debian
# base that deploy/local-images builds with debootstrap (no registry): the
# C runtime the binaries link, and the non-root user 65532 distroless has.
ARG BASE=opendew-local/debian:bookworm
FROM ${BASE}
RUN groupadd --gid 65532 nonroot \
 && useradd --uid 65532 --gid 65532 --home-dir /home/nonroot --create-home --shell /usr/sbin/nologin nonroot \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/*
USER 65532:65532
WORKDIR /home/nonroot
