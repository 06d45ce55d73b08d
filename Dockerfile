# The whispercms-server image: one static-ish binary, no git, no sshd.
#   docker build -t whispercms .
#   docker run -p 2222:2222 -v whispercms:/site whispercms
FROM rust:slim-bookworm AS build
WORKDIR /src
# cmake and g++ build zlib-ng for the Pingora ingress.
RUN apt-get update && apt-get install -y --no-install-recommends cmake g++ && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cargo build --release --bin whispercms-server

FROM debian:bookworm-slim
COPY --from=build /src/target/release/whispercms-server /usr/local/bin/whispercms-server
WORKDIR /site
EXPOSE 2222
CMD ["whispercms-server", "--config", "/site/settings.toml"]
