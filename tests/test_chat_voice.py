"""Voice input: the microphone's audio goes to Gemini as WAV and comes back as the person's words."""

from __future__ import annotations

import base64
import io
import wave

import pytest
from pydantic import SecretStr

from agent.conversation import ModelUnavailable
from agent.gemini import UNREACHABLE
from chat_ui.voice import NO_KEY, Recording, heard, transcribe, wav_bytes
from mcp_server.config import Settings
from tests.fake_gemini import Drop, error, get, last_parts, sequence, text_chunk

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


def _gemini(fake_gemini, **values) -> Settings:
    return Settings(gemini_api_key=SecretStr("key"), gemini_base_url=fake_gemini.url, **values)


def _uploaded_wav(request) -> wave.Wave_read:
    audio = get(last_parts(request.body)[0], "inlineData")
    return wave.open(io.BytesIO(base64.urlsafe_b64decode(audio["data"])))


@pytest.mark.parametrize("first", [error(503, "overloaded"), Drop()], ids=["503", "dropped connection"])
async def test_a_failed_attempt_is_retried(fake_gemini, first):
    fake_gemini.script = sequence(first, [text_chunk("buy milk tomorrow", finish="STOP")])
    assert await heard(_gemini(fake_gemini), PCM, 24000, backoff=0.01) == "buy milk tomorrow"
    assert len(fake_gemini.requests) == 2


@pytest.mark.parametrize("drop", [Drop(), Drop(midway=True)], ids=["before answering", "partway through the answer"])
async def test_a_connection_that_keeps_failing_is_explained(fake_gemini, drop):
    fake_gemini.script = lambda body: drop
    with pytest.raises(ModelUnavailable) as raised:
        await heard(_gemini(fake_gemini), PCM, 24000, retries=1, backoff=0.01)
    assert str(raised.value) == UNREACHABLE


async def test_an_overlong_recording_is_cut_and_sent_at_16_khz(fake_gemini):
    fake_gemini.script = lambda body: [text_chunk("call mom", finish="STOP")]
    recording = Recording(24000, max_seconds=2)
    for _ in range(30):  # 3 s in the browser's 0.1 s chunks
        recording.add(PCM)
    assert recording.cut
    assert "longer than 2 seconds" in recording.cut_note()
    assert await heard(_gemini(fake_gemini), bytes(recording.pcm), recording.sample_rate) == "call mom"
    with _uploaded_wav(fake_gemini.requests[0]) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getnframes()) == (1, 16000, 32000)


def test_a_recording_within_the_limit_is_kept_whole():
    recording = Recording(24000, max_seconds=2)
    recording.add(PCM)
    assert (bytes(recording.pcm), recording.cut) == (PCM, False)


def test_the_recording_limit_is_a_setting(monkeypatch):
    monkeypatch.setenv("TASKFLOW_VOICE_MAX_SECONDS", "30")
    assert Settings().voice_max_seconds == 30
    assert Settings.model_fields["voice_max_seconds"].default == 60
