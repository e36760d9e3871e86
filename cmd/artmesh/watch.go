package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/artmesh/artmesh"
	"github.com/artmesh/artmesh/api/apitype"
	"github.com/artmesh/artmesh/api/client"
)

// watchCmd is `watch [ID]`: the change feed, one line per event, until
// interrupted.
func (c *cli) watchCmd() *cobra.Command {
	var o client.WatchOptions
	var count int
	cmd := &cobra.Command{
		Use:   "watch [ID]",
		Short: "Print changes to the artifacts you may read as they happen",
		Long: `watch follows the node's change feed (GET /v1/events): artifacts created,
updated (a new version), deleted, versions deleted, shared and unshared, of
every artifact you may read, or of one (ID), one name (--name), or only those
others share with you (--shared-with-me). It runs until interrupted, and goes
on by itself after the node restarts, without losing or repeating an event.

Each line is: event id (a catalog index), type, artifact id, version, name,
and the agent that made the change. With --json, each event is one line of
JSON. --since ID replays the events after that id first (0: all the catalog
still holds); a "reset" line says that events were missed.`,
		Example: `  artmesh watch
  artmesh watch art_01JD5ZQ4M4Y7W3N7S9X2K8V6QH
  artmesh watch --shared-with-me --json
  artmesh watch --since 0 --count 10`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.ArtifactID = artmesh.ArtifactID(args[0])
			}
			if count < 0 {
				return usageErrorf("--count must not be negative")
			}
			api, err := c.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			seen := 0
			errDone := errors.New("done")
			err = api.Watch(ctx, o, func(ev client.Event) error {
				if err := c.printEvent(ev); err != nil {
					return err
				}
				if seen++; count > 0 && seen >= count {
					return errDone
				}
				return nil
			})
			if errors.Is(err, errDone) || (errors.Is(err, context.Canceled) && cmd.Context().Err() != nil) {
				return nil
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Name, "name", "", "only artifacts of this exact name")
	f.BoolVar(&o.SharedWithMe, "shared-with-me", false, "only artifacts others own")
	f.StringVar(&o.LastEventID, "since", "", "replay the events after this event id first (0: every event the catalog holds)")
	f.IntVar(&count, "count", 0, "stop after this many events (0: run until interrupted)")
	return cmd
}

// printEvent prints one event as a line.
func (c *cli) printEvent(ev client.Event) error {
	if c.jsonOut {
		var v any = ev.Event
		if ev.Reset != nil {
			v = struct {
				Type string `json:"type"`
				*apitype.EventReset
			}{client.EventReset, ev.Reset}
		}
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.stdout, "%s\n", data)
		return err
	}
	if ev.Reset != nil {
		_, err := fmt.Fprintf(c.stdout, "%s\treset\t%s\n", ev.ID, ev.Reset.Message)
		return err
	}
	line := []string{ev.ID, ev.Type, string(ev.ArtifactID), fmt.Sprintf("v%d", ev.Version), ev.Name, "by " + string(ev.Actor)}
	if len(ev.Agents)+len(ev.Groups) > 0 {
		var who []string
		for _, a := range ev.Agents {
			who = append(who, "agent "+string(a))
		}
		for _, g := range ev.Groups {
			who = append(who, "group "+g)
		}
		line = append(line, strings.Join(who, ", "))
	}
	_, err := fmt.Fprintln(c.stdout, strings.Join(line, "\t"))
	return err
}
