#!/bin/sh
# Regenerates the media fixtures the codec tests read. Run from this
# directory with ffmpeg (built with libx264, libx265, libaom, libmp3lame
# and libopus) on PATH:  sh gen.sh
#
# FLV carries what ffmpeg's FLV muxer accepts (H.264, AAC, MP3); HEVC and
# AV1 go into MP4 and Opus into Ogg, and the tests cut the hvcC/av1C
# record or the OpusHead packet out of those and wrap it the way an RTMP
# publisher does (legacy codec id 12, or an Enhanced RTMP FourCC header).
# One frame of a flat picture keeps every file small: the sequence
# headers do not depend on the picture.
set -e
ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }
pic() { echo "color=c=gray:s=$1:r=25"; }

# H.264 in FLV.
ff -f lavfi -i "$(pic 1280x720)" -frames:v 1 -c:v libx264 -profile:v high -level 3.1 -f flv h264_high_1280x720.flv
ff -f lavfi -i "$(pic 640x360)" -frames:v 1 -c:v libx264 -profile:v baseline -level 3.0 -f flv h264_baseline_640x360.flv
ff -f lavfi -i "$(pic 1918x1078)" -frames:v 1 -c:v libx264 -profile:v main -level 4.0 -f flv h264_main_1918x1078.flv
ff -f lavfi -i "$(pic 1920x1080)" -frames:v 1 -c:v libx264 -profile:v high -level 4.1 -flags +ildct -f flv h264_interlaced_1920x1080.flv
ff -f lavfi -i "$(pic 854x480)" -frames:v 1 -c:v libx264 -pix_fmt yuv420p10le -profile:v high10 -f flv h264_high10_854x480.flv
ff -f lavfi -i "$(pic 1918x1078)" -frames:v 1 -c:v libx264 -pix_fmt yuv422p -profile:v high422 -f flv h264_high422_1918x1078.flv
ff -f lavfi -i "$(pic 1918x1078)" -frames:v 1 -c:v libx264 -pix_fmt yuv444p -profile:v high444 -f flv h264_high444_1918x1078.flv
ff -f lavfi -i "$(pic 1918x1078)" -frames:v 1 -c:v libx264 -pix_fmt gray -f flv h264_gray_1918x1078.flv

# HEVC in MP4.
ff -f lavfi -i "$(pic 1280x720)" -frames:v 1 -c:v libx265 -x265-params log-level=error -f mp4 h265_main_1280x720.mp4
ff -f lavfi -i "$(pic 1918x1078)" -frames:v 1 -c:v libx265 -x265-params log-level=error -pix_fmt yuv420p10le -f mp4 h265_main10_1918x1078.mp4
ff -f lavfi -i "$(pic 1918x1078)" -frames:v 1 -c:v libx265 -x265-params log-level=error -pix_fmt yuv444p -f mp4 h265_rext444_1918x1078.mp4
ff -f lavfi -i "$(pic 1918x1078)" -frames:v 1 -c:v libx265 -x265-params log-level=error -pix_fmt gray -f mp4 h265_gray_1918x1078.mp4
ff -f lavfi -i "$(pic 640x360)" -frames:v 1 -c:v libx265 -x265-params log-level=error:temporal-layers=1 -f mp4 h265_sublayers_640x360.mp4

# AV1 in MP4.
ff -f lavfi -i "$(pic 1280x720)" -frames:v 1 -c:v libaom-av1 -cpu-used 8 -f mp4 av1_aom_1280x720.mp4
ff -f lavfi -i "$(pic 1918x1078)" -frames:v 1 -c:v libaom-av1 -cpu-used 8 -f mp4 av1_aom_1918x1078.mp4
ff -f lavfi -i "$(pic 1920x1080)" -frames:v 1 -c:v libsvtav1 -svtav1-params "svt-log-level=0" -f mp4 av1_svt_1920x1080.mp4

# AAC, MP3 in FLV; a raw 48 kHz MP3 frame (FLV has no rate code for it).
tone() { echo "sine=f=440:r=$1"; }
ff -f lavfi -i "$(tone 44100)" -t 0.05 -c:a aac -ac 2 -f flv aac_lc_44100_2.flv
ff -f lavfi -i "$(tone 48000)" -t 0.05 -c:a aac -ac 1 -f flv aac_lc_48000_1.flv
ff -f lavfi -i "$(tone 44100)" -t 0.05 -c:a aac -profile:a aac_main -ac 2 -f flv aac_main_44100_2.flv
ff -f lavfi -i "$(tone 22050)" -t 0.05 -c:a aac -profile:a aac_ltp -strict -2 -ac 2 -f flv aac_ltp_22050_2.flv
ff -f lavfi -i "$(tone 48000)" -t 0.05 -c:a aac -ac 6 -f flv aac_lc_48000_6.flv
ff -f lavfi -i "$(tone 48000)" -t 0.05 -af aformat=channel_layouts=hexagonal -c:a aac -f flv aac_pce_48000_6.flv
ff -f lavfi -i "$(tone 96000)" -t 0.05 -c:a aac -ac 2 -f flv aac_lc_96000_2.flv
ff -f lavfi -i "$(tone 44100)" -t 0.05 -c:a libmp3lame -ac 2 -f flv mp3_44100_2.flv
ff -f lavfi -i "$(tone 22050)" -t 0.05 -c:a libmp3lame -ac 1 -f flv mp3_22050_1.flv
ff -f lavfi -i "$(tone 11025)" -t 0.05 -c:a libmp3lame -ac 2 -f flv mp3_11025_2.flv
ff -f lavfi -i "$(tone 48000)" -t 0.05 -c:a libmp3lame -ac 1 -f mp3 -write_xing 0 -id3v2_version 0 mp3_48000_1.mp3

# Opus in Ogg.
ff -f lavfi -i "$(tone 48000)" -t 0.05 -c:a libopus -ac 2 -f ogg opus_48000_2.ogg
ff -f lavfi -i "$(tone 16000)" -t 0.05 -c:a libopus -ac 1 -f ogg opus_16000_1.ogg
ff -f lavfi -i "$(tone 48000)" -t 0.05 -c:a libopus -ac 6 -mapping_family 1 -f ogg opus_48000_6.ogg
