# The serving image: the app with the bundled model. No TensorFlow: the model runs through LiteRT.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 GRADIO_ANALYTICS_ENABLED=False
WORKDIR /app

COPY pyproject.toml README.md ./
COPY heartbeat ./heartbeat
RUN pip install --no-cache-dir ".[app]"

COPY app.py ./
COPY models ./models
# Compile the segmenter's Viterbi into numba's cache now, so that no start-up pays for it.
RUN python -c "from heartbeat.serve.page import warm_up; from heartbeat import load_model; warm_up(load_model())"

RUN useradd --create-home clinic
USER clinic
EXPOSE 7860
# Inside a container the app must listen on all interfaces; publish it only where it should be reached.
CMD ["python", "app.py", "--host", "0.0.0.0", "--port", "7860"]
