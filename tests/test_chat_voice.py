"""Voice input: the microphone's audio goes to Gemini as WAV and comes back as the person's words."""

from __future__ import annotations

import base64
import io
import wave

import pytest
from pydantic import SecretStr

from agent.conversation import ModelUnavailable
from chat_ui.voice import NO_KEY, transcribe, wav_bytes
from mcp_server.config import Settings
from tests.fake_gemini import error, get, last_parts, text_chunk

pytestmark = pytest.mark.anyio
PCM = b"\x00\x01" * 2400  # 0.1 s of 16-bit mono at 24 kHz


def test_pcm_becomes_a_wav_file():
    with wave.open(io.BytesIO(wav_bytes(PCM, 24000))) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes()) == (1, 2, 24000, 2400)


async def test_the_recording_is_transcribed(fake_gemini):
    fake_gemini.script = lambda body: [text_chunk(" remind me to stretch in ten minutes\n", finish="STOP")]
    settings = Settings(gemini_api_key=SecretStr("key"), gemini_base_url=fake_gemini.url)
    assert await transcribe(settings, wav_bytes(PCM, 24000)) == "remind me to stretch in ten minutes"
    audio = get(last_parts(fake_gemini.requests[0].body)[0], "inlineData")
    assert get(audio, "mimeType") == "audio/wav"
    assert base64.b64decode(audio["data"]).startswith(b"RIFF")


async def test_without_gemini_or_when_it_refuses_the_person_is_told(fake_gemini):
    with pytest.raises(ModelUnavailable, match="GEMINI_API_KEY"):
        await transcribe(Settings(), b"")
    assert "GEMINI_API_KEY" in NO_KEY
    fake_gemini.script = lambda body: error(403, "API key not valid")
    settings = Settings(gemini_api_key=SecretStr("key"), gemini_base_url=fake_gemini.url)
    with pytest.raises(ModelUnavailable, match="could not transcribe"):
        await transcribe(settings, wav_bytes(PCM, 24000))
