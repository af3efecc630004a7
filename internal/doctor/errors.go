package doctor

// ConfigError is a Config that Run refuses before it checks anything: no
// hub, a hub URL no client could use, a CA or token file that cannot be
// read. Its text names the setting by its `tryst doctor` flag, as
// internal/server's SettingError does for `tryst serve`, so a command can
// show it as it is; the command tells it apart from a failed check, which
// is no error at all, with errors.As.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }
