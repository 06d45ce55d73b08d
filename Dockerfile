# The whispercms-server image: one static-ish binary, no git, no sshd.
#   docker build -t whispercms .
#   docker run -p 2222:2222 -v whispercms:/site whispercms
FROM rust:slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin whispercms-server

FROM debian:bookworm-slim
COPY --from=build /src/target/release/whispercms-server /usr/local/bin/whispercms-server
WORKDIR /site
EXPOSE 2222
CMD ["whispercms-server", "--config", "/site/settings.toml"]
