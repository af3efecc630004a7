package turnserver

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// pionLogger adapts slog to pion's LeveledLogger. pion logs per packet at
// debug level, so the level is checked before formatting. pion's Trace and
// Debug both map to slog's Debug, and its Info (which it uses for routine
// refusals such as "No Permission") is demoted to Debug as well.
type pionLogger struct {
	l     *slog.Logger
	scope string
}

type pionLoggerFactory struct{ l *slog.Logger }

func (f pionLoggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return &pionLogger{l: f.l, scope: scope}
}

func (p *pionLogger) log(level slog.Level, msg string) {
	ctx := context.Background()
	if p.l.Enabled(ctx, level) {
		p.l.Log(ctx, level, msg, "component", "pion/"+p.scope)
	}
}

func (p *pionLogger) logf(level slog.Level, format string, args ...any) {
	ctx := context.Background()
	if p.l.Enabled(ctx, level) {
		p.l.Log(ctx, level, fmt.Sprintf(format, args...), "component", "pion/"+p.scope)
	}
}

func (p *pionLogger) Trace(msg string)                  { p.log(slog.LevelDebug-4, msg) }
func (p *pionLogger) Tracef(format string, args ...any) { p.logf(slog.LevelDebug-4, format, args...) }
func (p *pionLogger) Debug(msg string)                  { p.log(slog.LevelDebug, msg) }
func (p *pionLogger) Debugf(format string, args ...any) { p.logf(slog.LevelDebug, format, args...) }
func (p *pionLogger) Info(msg string)                   { p.log(slog.LevelDebug, msg) }
func (p *pionLogger) Infof(format string, args ...any)  { p.logf(slog.LevelDebug, format, args...) }
func (p *pionLogger) Warn(msg string)                   { p.log(slog.LevelWarn, msg) }
func (p *pionLogger) Warnf(format string, args ...any)  { p.logf(slog.LevelWarn, format, args...) }
func (p *pionLogger) Error(msg string)                  { p.log(slog.LevelWarn, msg) }
func (p *pionLogger) Errorf(format string, args ...any) { p.logf(slog.LevelWarn, format, args...) }
