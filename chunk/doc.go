// Package chunk implements the RTMP transport layer below the command and
// media messages: the handshake (simple and complex, server and client side),
// the chunk stream Reader and Writer, and helpers that build protocol control
// and user control messages.
//
// Everything here is allocation-conscious and event-loop friendly: the
// handshake types and the Reader are fed whatever bytes have arrived and
// report how many they consumed, never blocking and never retaining the
// caller's buffer. The Append* functions append wire bytes to a caller-owned
// slice so that a server can build a message once and fan it out.
//
// Complex handshake naming follows librtmp/crtmpserver: schema 0 has the
// digest block first (C1/S1 bytes 8..771, digest offset
// sum(bytes 8..11)%728+12), schema 1 has the key block first and the digest
// block at bytes 772..1535 (offset sum(bytes 772..775)%728+776). SRS uses the
// opposite numbering for the same two layouts.
//
// The package logs nothing; every failure is reported as an error.
package chunk
