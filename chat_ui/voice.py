"""Voice input: the microphone's PCM audio, transcribed by Gemini, becomes what the person said."""

from __future__ import annotations

import io
import logging
import wave

import httpx
from google import genai
from google.genai import errors, types

from agent.conversation import ModelUnavailable
from mcp_server.config import Settings

log = logging.getLogger(__name__)

NO_KEY = "Voice input needs the Gemini API (set GEMINI_API_KEY); until then, please type your request."
UNHEARD = "I could not make out any words; please try again, or type your request."
PROMPT = (
    "Transcribe this recording of a person talking to their task assistant. "
    "Reply with their words only, in the language they spoke; reply with nothing if no words can be heard."
)
TIMEOUT_MS = 60_000


def wav_bytes(pcm16: bytes, sample_rate: int) -> bytes:
    """Mono 16-bit PCM (what Chainlit's microphone sends) wrapped as a WAV file."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm16)
    return buffer.getvalue()


async def transcribe(settings: Settings, wav: bytes) -> str:
    """The words in a WAV recording; ModelUnavailable (with a sentence to show) when Gemini cannot be used."""
    if settings.gemini_api_key is None:
        raise ModelUnavailable(NO_KEY)
    client = genai.Client(
        enterprise=False,
        api_key=settings.gemini_api_key.get_secret_value(),
        http_options=types.HttpOptions(base_url=settings.gemini_base_url, api_version="v1beta", timeout=TIMEOUT_MS),
    )
    audio = types.Part.from_bytes(data=wav, mime_type="audio/wav")
    try:
        response = await client.aio.models.generate_content(
            model=settings.gemini_model, contents=[types.Content(role="user", parts=[audio, types.Part(text=PROMPT)])]
        )
    except errors.APIError as error:
        log.warning("Gemini transcription failed: %s", error)
        raise ModelUnavailable("The Gemini API could not transcribe the recording.") from error
    except (httpx.TransportError, OSError) as error:
        raise ModelUnavailable("The Gemini API could not be reached; check the network connection.") from error
    finally:
        await client.aio.aclose()
    return (response.text or "").strip()
