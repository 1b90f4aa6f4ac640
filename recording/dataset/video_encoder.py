"""Streaming per-camera mp4 encoder running in its own thread.

``submit`` only copies the frame into a queue, so the recorder's frame clock never waits for the
codec. The thread encodes frame k at pts k (codec time base 1/fps → mp4 pts exactly k/fps, CFR,
starting at 0), accumulates the per-frame image stats, and on ``finish`` flushes, closes and fsyncs
the file. Errors (e.g. disk full) are kept and reported by ``error`` / ``finish``.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from recording.dataset.stats import ImageFrameStats, image_frame_stats
from recording.dataset.video_settings import VideoSettings

WORKER_NICE = 10
_STOP = object()
_ABORT = object()


@dataclass
class EncodeResult:
    """What one camera's encoder produced for an episode."""

    path: Path
    frames: int
    frame_stats: list[ImageFrameStats]


class CameraEncoder:
    """Encode HxWx3 uint8 RGB frames into one CFR mp4 in a background thread."""

    def __init__(
        self, path: Path, width: int, height: int, fps: int, settings: VideoSettings, name: str = ""
    ) -> None:
        self.path = Path(path)
        self.width = width
        self.height = height
        self.fps = fps
        self._settings = settings
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._submitted = 0
        self._encoded = 0
        self._stats: list[ImageFrameStats] = []
        self._error: BaseException | None = None
        self._container = av.open(str(self.path), mode="w", format="mp4")
        try:
            stream = self._container.add_stream(settings.encoder(), rate=fps, options=settings.options())
            stream.width = width
            stream.height = height
            stream.pix_fmt = settings.pix_fmt
            stream.codec_context.time_base = Fraction(1, fps)
        except BaseException:
            self._container.close()
            raise
        self._stream = stream
        self._open_codec_at_low_priority()
        self._thread = threading.Thread(
            target=self._run, name=f"encoder-{name or self.path.stem}", daemon=True
        )
        self._thread.start()

    @property
    def error(self) -> BaseException | None:
        """The exception that stopped the encoder thread, if any."""
        return self._error

    @property
    def backlog(self) -> int:
        """Frames submitted but not yet encoded."""
        return self._submitted - self._encoded

    def submit(self, frame: np.ndarray) -> None:
        """Queue a frame (copied, so the caller may reuse its buffer). Never waits for the codec."""
        self._queue.put(np.array(frame, dtype=np.uint8, copy=True, order="C"))
        self._submitted += 1

    def finish(self) -> EncodeResult:
        """Flush and close the file; blocks until all queued frames are encoded. Re-raises errors."""
        self._queue.put(_STOP)
        self._thread.join()
        if self._error is not None:
            raise self._error
        return EncodeResult(self.path, self._encoded, self._stats)

    def abort(self) -> None:
        """Stop without finishing the file and delete it (discarded episode)."""
        self._queue.put(_ABORT)
        self._thread.join()
        with contextlib.suppress(OSError):
            self.path.unlink()

    def _open_codec_at_low_priority(self) -> None:
        """Open the codec from a short-lived thread running at a high nice value.

        Codecs start their worker threads when opened (SVT-AV1: dozens per encoder) and Linux threads
        inherit the nice value of the thread that creates them. Encoding is background work, the
        frame clock is not: with the workers niced, the recording loop and this Python encoder
        thread (which stays at normal priority, so it never sits on the GIL while starved by its own
        workers) win the CPU on a busy machine.
        """
        error: list[BaseException] = []

        def opener() -> None:
            with contextlib.suppress(OSError, AttributeError):
                tid = threading.get_native_id()
                os.setpriority(
                    os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + WORKER_NICE)
                )
            try:
                self._stream.codec_context.open()
            except BaseException as e:
                error.append(e)

        t = threading.Thread(target=opener, name="encoder-open", daemon=True)
        t.start()
        t.join()
        if error:
            self._container.close()
            raise error[0]

    def _run(self) -> None:
        container, stream = self._container, self._stream
        aborted = False
        done = False  # the STOP/ABORT marker has been taken from the queue
        try:
            while True:
                item = self._queue.get()
                if item is _ABORT:
                    aborted = done = True
                    break
                if item is _STOP:
                    done = True
                    for packet in stream.encode(None):
                        container.mux(packet)
                    break
                assert isinstance(item, np.ndarray)
                self._stats.append(image_frame_stats(item))
                vf = av.VideoFrame.from_ndarray(item, format="rgb24")
                vf.pts = self._encoded
                vf.time_base = Fraction(1, self.fps)
                for packet in stream.encode(vf):
                    container.mux(packet)
                self._encoded += 1
        except BaseException as e:
            self._error = e
            # keep consuming until told to stop, so submit() never piles up and finish() returns
            while not done:
                item = self._queue.get()
                if item is _STOP or item is _ABORT:
                    aborted = item is _ABORT
                    done = True
        finally:
            try:
                container.close()
            except BaseException as e:
                if self._error is None and not aborted:
                    self._error = e
        if self._error is None and not aborted:
            try:
                fd = os.open(self.path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as e:
                self._error = e
