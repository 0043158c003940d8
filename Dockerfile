FROM python:3.11-slim
WORKDIR /srv
RUN pip install --no-cache-dir uv
COPY pyproject.toml uv.lock README.md ./
COPY app ./app
COPY migrations ./migrations
COPY alembic.ini worker.py ./
RUN uv sync --frozen --no-dev && ln -s /srv/.venv/bin/reckon /usr/local/bin/reckon
ENV PATH="/srv/.venv/bin:$PATH"
