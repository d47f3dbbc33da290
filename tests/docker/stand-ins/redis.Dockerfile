# Test-only stand-in for the official redis:7 image, for machines that cannot pull images.
# The rootfs is Debian bookworm (debootstrap --variant=minbase) with redis-server (7.0).
# scripts/docker-stand-ins.sh imports it and builds this file with the classic builder.
FROM scalr-stand-in/bookworm-redis:rootfs

# Like the official image: the server runs in /data (a volume) as the redis user, so the
# compose file's relative `dir` and its named volume behave the same.
RUN mkdir -p /data /usr/local/etc/redis && chown redis:redis /data
ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
VOLUME /data
WORKDIR /data
USER redis
EXPOSE 6379
CMD ["redis-server"]
