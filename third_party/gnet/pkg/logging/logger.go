// Copyright (c) 2020 The Gnet Authors. All rights reserved.
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
//     http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

// Package logging provides logging functionality for gnet applications,
// it sets up a default logger (a log/slog text handler on stderr; patched for
// rtmpedge, upstream uses go.uber.org/zap) that is about to be used by your
// gnet application.
// You're allowed to replace the default logger with your customized logger by
// implementing Logger and assign it to the functional option via gnet.WithLogger,
// and then passing it to gnet.Run or gnet.Rotate.
//
// The environment variable `GNET_LOGGING_LEVEL` determines which level will be applied for logging.
// The environment variable `GNET_LOGGING_FILE` is set to a local file path when you want to print logs
// into local file (opened for append, without rotation).
// Alternatives of logging level (the variable of logging level ought to be an integer, numbered as zap's):
/*
const (
	DebugLevel  Level = -1
	InfoLevel   Level = 0 // the default
	WarnLevel   Level = 1
	ErrorLevel  Level = 2
	DPanicLevel Level = 3
	PanicLevel  Level = 4
	FatalLevel  Level = 5
)
*/
package logging

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Flusher is the callback function which flushes any buffered log entries to the underlying writer.
// It is usually called before the gnet process exits.
type Flusher = func() error

var (
	mu                  sync.RWMutex
	defaultLogger       Logger
	defaultLoggingLevel Level
	defaultFlusher      Flusher
)

// Level is a logging priority, numbered as zapcore.Level is.
type Level int8

const (
	// DebugLevel logs are typically voluminous, and are usually disabled in
	// production.
	DebugLevel Level = iota - 1
	// InfoLevel is the default logging priority.
	InfoLevel
	// WarnLevel logs are more important than Info, but don't need individual
	// human review.
	WarnLevel
	// ErrorLevel logs are high-priority. If an application is running smoothly,
	// it shouldn't generate any error-level logs.
	ErrorLevel
	// DPanicLevel logs are particularly important errors.
	DPanicLevel
	// PanicLevel logs are more important still.
	PanicLevel
	// FatalLevel logs a message, then calls os.Exit(1).
	FatalLevel
)

// String returns the lower-case name of the level, as zapcore.Level's String does.
func (l Level) String() string {
	switch l {
	case DebugLevel:
		return "debug"
	case InfoLevel:
		return "info"
	case WarnLevel:
		return "warn"
	case ErrorLevel:
		return "error"
	case DPanicLevel:
		return "dpanic"
	case PanicLevel:
		return "panic"
	case FatalLevel:
		return "fatal"
	default:
		return "Level(" + strconv.Itoa(int(l)) + ")"
	}
}

// slogLevel maps l onto slog's scale, four apart: Debug -4, Info 0, Warn 4,
// Error 8, then 12, 16 and 20 for DPanic, Panic and Fatal.
func (l Level) slogLevel() slog.Level { return slog.Level(4 * int(l)) }

// levelName prints the levels above Error by their names ("FATAL", not "ERROR+12").
func levelName(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.LevelKey {
		if lv, ok := a.Value.Any().(slog.Level); ok && lv > slog.LevelError {
			a.Value = slog.StringValue(strings.ToUpper(Level(lv / 4).String()))
		}
	}
	return a
}

// slogLogger is the Logger of this package: a slog text handler, each
// message prefixed by "gnet: ".
type slogLogger struct{ l *slog.Logger }

func newLogger(w io.Writer, lvl Level) Logger {
	return slogLogger{slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		Level:       lvl.slogLevel(),
		ReplaceAttr: levelName,
	}))}
}

func (s slogLogger) log(lvl Level, format string, args []any) {
	ctx, sl := context.Background(), lvl.slogLevel()
	if s.l.Enabled(ctx, sl) {
		s.l.Log(ctx, sl, "gnet: "+fmt.Sprintf(format, args...))
	}
}

func (s slogLogger) Debugf(format string, args ...any) { s.log(DebugLevel, format, args) }
func (s slogLogger) Infof(format string, args ...any)  { s.log(InfoLevel, format, args) }
func (s slogLogger) Warnf(format string, args ...any)  { s.log(WarnLevel, format, args) }
func (s slogLogger) Errorf(format string, args ...any) { s.log(ErrorLevel, format, args) }

// Fatalf logs at FATAL level, then calls os.Exit(1).
func (s slogLogger) Fatalf(format string, args ...any) {
	s.log(FatalLevel, format, args)
	os.Exit(1)
}

func init() {
	lvl := os.Getenv("GNET_LOGGING_LEVEL")
	if len(lvl) > 0 {
		loggingLevel, err := strconv.ParseInt(lvl, 10, 8)
		if err != nil {
			panic("invalid GNET_LOGGING_LEVEL, " + err.Error())
		}
		defaultLoggingLevel = Level(loggingLevel)
	}

	// Initializes the inside default logger of gnet.
	fileName := os.Getenv("GNET_LOGGING_FILE")
	if len(fileName) > 0 {
		var err error
		defaultLogger, defaultFlusher, err = CreateLoggerAsLocalFile(fileName, defaultLoggingLevel)
		if err != nil {
			defaultLogger.Errorf("invalid GNET_LOGGING_FILE, logging to stderr: %v", err)
		}
	} else {
		defaultLogger = newLogger(os.Stderr, defaultLoggingLevel)
	}
}

// GetDefaultLogger returns the default logger.
func GetDefaultLogger() Logger {
	mu.RLock()
	defer mu.RUnlock()
	return defaultLogger
}

// GetDefaultFlusher returns the default flusher.
func GetDefaultFlusher() Flusher {
	mu.RLock()
	defer mu.RUnlock()
	return defaultFlusher
}

// SetDefaultLoggerAndFlusher sets the default logger and its flusher.
func SetDefaultLoggerAndFlusher(logger Logger, flusher Flusher) {
	mu.Lock()
	defaultLogger, defaultFlusher = logger, flusher
	mu.Unlock()
}

// LogLevel tells what the default logging level is.
func LogLevel() string {
	return strings.ToUpper(defaultLoggingLevel.String())
}

// CreateLoggerAsLocalFile sets up a logger writing to the file at localFilePath,
// creating it (mode 0600) and its directory if need be and appending to it;
// the file is not rotated. If the file cannot be opened, it returns the error
// with a logger on stderr, since gnet's own callers install the logger and
// drop the error.
func CreateLoggerAsLocalFile(localFilePath string, logLevel Level) (logger Logger, flush func() error, err error) {
	if len(localFilePath) == 0 {
		return nil, nil, errors.New("invalid local logger path")
	}
	if err = os.MkdirAll(filepath.Dir(localFilePath), 0o755); err == nil {
		var f *os.File
		if f, err = os.OpenFile(localFilePath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
			return newLogger(f, logLevel), f.Sync, nil
		}
	}
	return newLogger(os.Stderr, logLevel), nil, err
}

// Cleanup does something windup for logger, like closing, flushing, etc.
func Cleanup() {
	mu.RLock()
	if defaultFlusher != nil {
		_ = defaultFlusher()
	}
	mu.RUnlock()
}

// Error prints err if it's not nil.
func Error(err error) {
	if err != nil {
		mu.RLock()
		defaultLogger.Errorf("error occurs during runtime, %v", err)
		mu.RUnlock()
	}
}

// Debugf logs messages at DEBUG level.
func Debugf(format string, args ...any) {
	mu.RLock()
	defaultLogger.Debugf(format, args...)
	mu.RUnlock()
}

// Infof logs messages at INFO level.
func Infof(format string, args ...any) {
	mu.RLock()
	defaultLogger.Infof(format, args...)
	mu.RUnlock()
}

// Warnf logs messages at WARN level.
func Warnf(format string, args ...any) {
	mu.RLock()
	defaultLogger.Warnf(format, args...)
	mu.RUnlock()
}

// Errorf logs messages at ERROR level.
func Errorf(format string, args ...any) {
	mu.RLock()
	defaultLogger.Errorf(format, args...)
	mu.RUnlock()
}

// Fatalf logs messages at FATAL level.
func Fatalf(format string, args ...any) {
	mu.RLock()
	defaultLogger.Fatalf(format, args...)
	mu.RUnlock()
}

// Logger is used for logging formatted messages.
type Logger interface {
	// Debugf logs messages at DEBUG level.
	Debugf(format string, args ...any)
	// Infof logs messages at INFO level.
	Infof(format string, args ...any)
	// Warnf logs messages at WARN level.
	Warnf(format string, args ...any)
	// Errorf logs messages at ERROR level.
	Errorf(format string, args ...any)
	// Fatalf logs messages at FATAL level.
	Fatalf(format string, args ...any)
}
