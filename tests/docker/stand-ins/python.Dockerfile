# Test-only stand-in for the official python:3.11-slim image, for machines that cannot pull
# images. The rootfs is Debian bookworm (debootstrap --variant=minbase) with python3,
# python3-venv, python3-pip, python-is-python3 and ca-certificates; bookworm's Python is 3.11.
# scripts/docker-stand-ins.sh imports it and builds this file with the classic builder.
FROM scalr-stand-in/bookworm-python:rootfs

# Like the official image: python and pip on PATH (/usr/local/bin first: pip installs there),
# UTF-8, and pip allowed to install into the system interpreter.
ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8

# The host's local CA certificates (/usr/local/share/ca-certificates), so that pip inside an
# image build trusts what the host trusts (an outbound proxy with its own CA). Only in this
# test base image: the project's Dockerfile never adds certificates.
COPY local-ca/ /usr/local/share/ca-certificates/
RUN rm -f /usr/lib/python3*/EXTERNALLY-MANAGED \
    && update-ca-certificates --fresh >/dev/null

CMD ["python"]
