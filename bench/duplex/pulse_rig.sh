#!/usr/bin/env bash
# PulseAudio rig with a real (digital) acoustic path for Chromium (issue 15):
#   Chromium plays to the null sink "speaker"; module-loopback copies speaker.monitor (the echo,
#   with ~30 ms of buffering delay, at ECHO_DB below the playback) into the null sink "micbus",
#   where `paplay -d micbus user.wav` adds the user's voice; the source "mic" (remap of
#   micbus.monitor) is the default source, so getUserMedia records echo + user from a real
#   device (no fake-device flags).
# Usage: RIG_DIR=/tmp/pulse ECHO_DB=-6 bash bench/duplex/pulse_rig.sh [start|stop];
#   then export PULSE_SERVER=unix:$RIG_DIR/native
# ECHO_DB (default -6): the echo's level at the mic relative to the playback, like a laptop's
#   speaker next to its mic (the user's voice and the echo arrive at about the same level).
# Needs: apt-get install pulseaudio pulseaudio-utils (runs as root, no --system needed).
set -euo pipefail
dir=${RIG_DIR:-/tmp/pulse}
echo_db=${ECHO_DB:--6}
export PULSE_SERVER=unix:$dir/native
case "${1:-start}" in
  start)
    mkdir -p "$dir"
    cat > "$dir/rig.pa" <<PA
load-module module-native-protocol-unix auth-anonymous=1 socket=$dir/native
load-module module-null-sink sink_name=speaker rate=48000 channels=1 sink_properties=device.description=Speaker
load-module module-null-sink sink_name=micbus rate=48000 channels=1 sink_properties=device.description=MicBus
load-module module-loopback source=speaker.monitor sink=micbus latency_msec=30 source_dont_move=true sink_dont_move=true sink_input_properties=media.name=echo
load-module module-remap-source master=micbus.monitor source_name=mic source_properties=device.description=RigMic
set-default-sink speaker
set-default-source mic
PA
    # HOME: pulseaudio keeps a cookie and state there; a private one per rig.
    HOME=$dir pulseaudio --daemonize=yes --log-level=${RIG_LOG_LEVEL:-notice} --exit-idle-time=-1 -n -F "$dir/rig.pa" --use-pid-file=no \
      --log-target=file:$dir/pa.log
    for _ in $(seq 100); do pactl info >/dev/null 2>&1 && break; sleep 0.1; done
    echo_input=$(pactl list short sink-inputs | awk '{print $1}' | head -1)
    pactl set-sink-input-volume "$echo_input" "${echo_db}dB"
    pactl list short sinks; pactl list short sources ;;
  stop)
    pactl exit ;;
esac
