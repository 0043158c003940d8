FROM python:3.11-slim
WORKDIR /srv
RUN pip install --no-cache-dir uv
COPY pyproject.toml uv.lock README.md ./
COPY app ./app
COPY migrations ./migrations
COPY alembic.ini worker.py ./
# Bytecode compiled at build time: the app runs as a user that cannot write to /srv.
RUN UV_COMPILE_BYTECODE=1 uv sync --frozen --no-dev && ln -s /srv/.venv/bin/reckon /usr/local/bin/reckon \
    && /srv/.venv/bin/python -m compileall -q app migrations worker.py \
    && useradd --system --no-create-home --shell /usr/sbin/nologin reckon
ENV PATH="/srv/.venv/bin:$PATH" \
    RECKON_ENV=production
USER reckon
EXPOSE 8000
