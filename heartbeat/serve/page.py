"""The page: upload or record a heart sound, get the decision, its reasons, two pictures and a referral
sheet; and `/classify`, the same answer as JSON for programs."""
from __future__ import annotations

import base64

import gradio as gr
import numpy as np

from ..frontend import prepare
from ..predict import Judged, decide, judge
from ..referral import referral_pdf
from ..words import DISCLAIMER, details, headline
from .custody import Custody
from .figures import beats_figure, shown, spectrogram_figure

MAX_SECONDS = 120            # longer recordings are refused with a message (see heartbeat.audio)
SHEET_TTL_S = 15 * 60
NOTE = f"**{DISCLAIMER}**"


def _judged(path: str | None, model, custody: Custody) -> Judged | str:
    """The Judged answer for an upload, or a message for the page. The upload is read into memory and
    deleted from disk before it is decoded."""
    if not path:
        return "Record or upload a heart sound first."
    try:
        data = custody.take(path)
        if data is None:
            return "**The recording is no longer on the server.** Please upload or record it again."
        judged = judge(data, model, max_seconds=MAX_SECONDS)
    finally:
        custody.done()
    return judged if judged.result is not None else f"**Could not judge this recording.** {judged.error}"


def explain(result: dict) -> str:
    """The supporting lines under the answer. The headline itself is shown once, by the Label above
    (a heading here repeated it, and a phone showed it three times in one screen)."""
    return "\n".join(f"- {line}" for line in details(result))


def answer(path: str | None, model, custody: Custody):
    """The page: (the decision with its confidence, explanation, beats figure, heart-band spectrogram, and
    what the referral sheet is made from: the result and the beats picture, never the recording)."""
    judged = _judged(path, model, custody)
    if isinstance(judged, str):
        return None, judged, None, None, None
    result = judged.result
    beats = beats_figure(judged.prepared, result).png()
    sheet = {"result": result.to_dict(), "picture": beats}
    # The headline is the decision, with the confidence in it, and nothing else: a Label showing both
    # classes heads with the larger bar, which near the cut once said "Normal" above "Abnormal: refer".
    label = {headline(sheet["result"]): result.confidence}
    return (label, explain(sheet["result"]), shown(beats), shown(spectrogram_figure(judged.prepared, result).png()),
            sheet)


def answer_json(path: str | None, model, custody: Custody) -> dict:
    """The API (`/classify`): the whole Result as JSON, no pictures; or {"error": message}."""
    judged = _judged(path, model, custody)
    if isinstance(judged, str):
        return {"error": judged.replace("**", "")}
    return judged.result.to_dict()


def referral_link(sheet: dict | None, reference: str | None) -> str:
    """The referral sheet as a link holding the PDF itself (data: URL): made in memory, never on disk."""
    if not sheet:
        return "Check a heart sound first: the sheet is made from its answer."
    pdf = referral_pdf(sheet["result"], sheet["picture"], reference or "")
    return (f'<a download="referral-sheet.pdf" href="data:application/pdf;base64,{base64.b64encode(pdf).decode()}">'
            "<b>Save the referral sheet</b> (PDF, one page)</a>")


# Browsers process microphone input for speech by default: echo cancellation, noise suppression and automatic
# gain can remove a heart sound's low thumps or pump its level. Every microphone request from the page asks
# for the raw signal instead; the track's settings are kept on `window.heartbeatMicrophone` so a test (or a
# curious clinician's console) can read back what the browser granted.
RAW_MICROPHONE = """<script>
(() => {
  const media = navigator.mediaDevices;
  if (!media || !media.getUserMedia || media.heartbeatRaw) return;
  const original = media.getUserMedia.bind(media);
  const raw = {echoCancellation: false, noiseSuppression: false, autoGainControl: false};
  media.getUserMedia = async (constraints) => {
    if (constraints && constraints.audio) {
      const asked = constraints.audio === true ? {} : constraints.audio;
      constraints = {...constraints, audio: {...asked, ...raw}};
    }
    const stream = await original(constraints);
    const track = stream.getAudioTracks()[0];
    if (track) window.heartbeatMicrophone = track.getSettings();
    return stream;
  };
  media.heartbeatRaw = true;
})();
</script>"""


# The answer once: the Label's heading. Its bar would print the headline a second time beside the
# confidence; the words under it give the chance of abnormal against the cut, which is what to act on.
CSS = "#answer .confidence-set { display: none; }"
LAUNCH = {"head": RAW_MICROPHONE, "css": CSS}      # page settings Gradio 6 takes at launch()


def build(model, custody: Custody) -> gr.Blocks:
    with gr.Blocks(title="heartbeat: heart-sound screening", delete_cache=(60, 120)) as demo:
        gr.Markdown("## heartbeat: heart-sound screening\nRecord 15-30 seconds with the stethoscope or phone on "
                    "the chest, or upload a recording (WAV, MP3, M4A, WEBM, OGG, FLAC, 3GP...).")
        gr.Markdown(NOTE)
        # type="filepath" hands us the original file (type="numpy" would convert through pydub/ffprobe).
        # The length limit is enforced when reading (MAX_SECONDS), with a message, not by the widget.
        audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Heart sound")
        button = gr.Button("Check this heart sound", variant="primary")
        label = gr.Label(label="Answer", show_label=False, num_top_classes=1, elem_id="answer")
        explanation = gr.Markdown()
        beats_plot = gr.Plot(label="Beats and windows", show_label=False)    # its title says what it shows
        map_plot = gr.Plot(label="Heart-sound band over time", show_label=False)
        # This browser session's last answer, for the referral sheet: dropped SHEET_TTL_S after the answer
        # (Gradio would keep it an hour after the tab closes, and forever for API clients).
        sheet = gr.State(None, time_to_live=SHEET_TTL_S)
        with gr.Row():
            reference = gr.Textbox(label="Patient reference for the sheet (optional)", max_lines=1, scale=3,
                                   placeholder="printed on the referral sheet only; never stored")
            sheet_button = gr.Button("Download referral sheet", scale=1)
        sheet_link = gr.HTML()
        button.click(lambda p: answer(p, model, custody), inputs=audio,
                     outputs=[label, explanation, beats_plot, map_plot, sheet],
                     concurrency_limit=2, concurrency_id="judge", api_name="predict")
        sheet_button.click(referral_link, inputs=[sheet, reference], outputs=sheet_link, api_name="referral")
        # For programs (and phones on slow links): the same answer as JSON, without the pictures.
        result_json = gr.JSON(visible=False)
        gr.Button(visible=False).click(lambda p: answer_json(p, model, custody), inputs=audio, outputs=result_json,
                                       concurrency_limit=2, concurrency_id="judge", api_name="classify")
    demo.queue(max_size=32, default_concurrency_limit=2)
    return demo


def warm_up(model) -> None:
    """The first answer sizes the network's tensors and loads the pictures' font: paid while the page
    loads, not on a patient."""
    rate = model.features.sample_rate
    t = np.arange(5 * rate) / rate
    audio = (np.sin(2 * np.pi * 60 * t) * (np.sin(np.pi * 1.2 * t) ** 8)).astype(np.float32)
    prepared = prepare(audio, model.features, model.segmenter)
    result = decide(prepared, model)
    for picture in (beats_figure(prepared, result), spectrogram_figure(prepared, result)):
        picture.png()
