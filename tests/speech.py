"""Spoken commands for the voice tests and benchmark: espeak-ng speech as the browser would record it."""

from __future__ import annotations

import io
import subprocess
import wave

import numpy as np

BROWSER_RATE = 24000  # the browser records 16-bit PCM at 24 kHz, whatever the page asks for


def speak(text: str, voice_name: str = "en-us", speed: int = 150) -> bytes:
    """espeak-ng saying `text`, as 16-bit mono PCM at the browser's 24 kHz."""
    spoken = subprocess.run(
        ["espeak-ng", "-v", voice_name, "-s", str(speed), "--stdout", text], capture_output=True, check=True
    ).stdout
    with wave.open(io.BytesIO(spoken)) as wav:
        rate, samples = wav.getframerate(), np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
    # Linear interpolation, not the recogniser's own resampler, so a fault there cannot cancel itself out.
    times = np.arange(int(samples.size * BROWSER_RATE / rate)) * rate / BROWSER_RATE
    return np.rint(np.interp(times, np.arange(samples.size), samples)).astype("<i2").tobytes()
