package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// resolveFlags fills every flag of fs that was not given on the command
// line, first from a MERIDIAN_* environment variable (flag "serf-bind" reads
// MERIDIAN_SERF_BIND), then from the YAML file named by the "config" flag
// (keys are flag names, with '-' or '_'). Command line beats environment
// beats file beats default.
func resolveFlags(fs *flag.FlagSet) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	warnUnknownEnv(fs) // cli.go: a misspelled MERIDIAN_* is not silently ignored

	envName := func(name string) string {
		return "MERIDIAN_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	}
	// The config file itself may come from the environment.
	if cf := fs.Lookup("config"); cf != nil && !set["config"] {
		if v, ok := os.LookupEnv(envName("config")); ok {
			if err := fs.Set("config", v); err != nil {
				return err
			}
		}
	}
	file := map[string]string{}
	if cf := fs.Lookup("config"); cf != nil && cf.Value.String() != "" {
		var err error
		if file, err = loadYAMLConfig(cf.Value.String(), fs); err != nil {
			return err
		}
	}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || set[f.Name] || f.Name == "config" {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("environment %s=%q: %w", envName(f.Name), v, e)
			}
			return
		}
		if v, ok := file[f.Name]; ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("config file: %s: %q: %w", f.Name, v, e)
			}
		}
	})
	return err
}

// loadYAMLConfig reads a flat YAML map of flag names to values. Unknown keys
// are errors, so a typo does not go unnoticed.
func loadYAMLConfig(path string, fs *flag.FlagSet) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	out := map[string]string{}
	var unknown []string
	for k, v := range raw {
		name := strings.ReplaceAll(k, "_", "-")
		if fs.Lookup(name) == nil || name == "config" {
			unknown = append(unknown, k)
			continue
		}
		switch x := v.(type) {
		case []any:
			parts := make([]string, len(x))
			for i, p := range x {
				parts[i] = fmt.Sprint(p)
			}
			out[name] = strings.Join(parts, ",")
		case nil:
		default:
			out[name] = fmt.Sprint(x)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("config file %s: unknown keys %s", path, strings.Join(unknown, ", "))
	}
	return out, nil
}
