// liblz4 (Debian: liblz4-dev): the block decoder for the tracker's binary WebSocket frames.
#include <lz4.h>
