#!/usr/bin/python3
"""Stands in for yt-dlp in dself's ingest tests to reproduce the crash window between a finished
download and its registration: given the same arguments dself gives yt-dlp, it downloads the
first video of the page completely (to the name yt-dlp would use), records it in the download
archive as yt-dlp does, and then kills its parent, dself, with SIGKILL before dself can register
it. The next `dself ingest` of the same page must register that video all the same.
"""
import json
import os
import re
import signal
import sys
import urllib.parse
import urllib.request


def main():
    args = sys.argv[1:]

    def value(flag):
        return args[args.index(flag) + 1]

    home = value("--paths")
    template = value("--output")
    archive = value("--download-archive")
    url = args[-1]

    page = urllib.request.urlopen(url).read().decode()
    media_url = urllib.parse.urljoin(url, re.search(r'<video[^>]*\ssrc="([^"]+)"', page).group(1))
    # What yt-dlp's html5 extractor reports for the first video of such a page.
    info = {"id": "playlist-1", "extractor": "html5", "extractor_key": "HTML5MediaEmbed",
            "title": "first video (downloaded before the crash)", "webpage_url": url, "url": media_url,
            "ext": "mp4"}
    video = os.path.join(home, template % {"extractor": info["extractor"], "id": info["id"], "ext": "mp4"})
    os.makedirs(os.path.dirname(video), exist_ok=True)
    with open(os.path.join(os.path.dirname(video), "video.info.json"), "w") as f:
        json.dump(info, f)
    track = re.search(r'<track[^>]*\ssrc="([^"]+)"', page)
    if track:
        with urllib.request.urlopen(urllib.parse.urljoin(url, track.group(1))) as response:
            with open(os.path.join(os.path.dirname(video), "video.en.vtt"), "wb") as f:
                f.write(response.read())
    with urllib.request.urlopen(media_url) as response, open(video + ".part", "wb") as f:
        f.write(response.read())
    os.rename(video + ".part", video)
    with open(archive, "a") as f:
        f.write("html5mediaembed playlist-1\n")
    os.kill(os.getppid(), signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
