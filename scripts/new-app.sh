#!/usr/bin/env bash
# `make new-app NAME=billing`: copy template-app/ to NAME/ (or $DEST_DIR/NAME) and replace the
# name everywhere (compose project, container names <app>-backend/<app>-worker, image tag,
# Dockerfile paths, README). The new app's own tests run with: cd NAME/backend && pytest
set -euo pipefail
cd "$(dirname "$0")/.."

name="${1:-}"
dest_dir="${DEST_DIR:-.}"
template="template-app"

if [[ ! "$name" =~ ^[a-z][a-z0-9-]{0,39}$ ]] || [[ "$name" == *- ]]; then
    echo "new-app: NAME must be lowercase letters, digits and '-', starting with a letter (got '$name')" >&2
    exit 2
fi
if [[ "$name" == "$template" ]]; then
    echo "new-app: choose a name other than $template" >&2
    exit 2
fi
target="$dest_dir/$name"
if [[ -e "$target" ]]; then
    echo "new-app: $target already exists; not touching it" >&2
    exit 1
fi

mkdir -p "$target"
# Copy without caches or local state.
tar -C "$template" \
    --exclude='__pycache__' --exclude='*.pyc' --exclude='.pytest_cache' \
    --exclude='.mypy_cache' --exclude='.ruff_cache' -cf - . | tar -C "$target" -xf -

# Substitute the name in every text file (and in the one Python-identifier spelling).
py_name="${name//-/_}"
grep -rlI -e "$template" -e "template_app" "$target" | while IFS= read -r f; do
    sed -i -e "s/$template/$name/g" -e "s/template_app/$py_name/g" "$f"
done

if grep -rI -e "$template" -e "template_app" "$target" >/dev/null; then
    echo "new-app: '$template' is still mentioned somewhere in $target" >&2
    exit 1
fi

cat <<MSG
new-app: created $target from $template.
  run it:        make dev APP=$name
  its tests:     cd $name/backend && ../../.venv/bin/python -m pytest -q
  with Docker:   make up APP=$name   (containers $name-backend; uncomment worker: for $name-worker)
MSG
