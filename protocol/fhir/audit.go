package fhir

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Code systems of FHIR R4 AuditEvents.
const (
	AuditEventTypeSystem = "http://terminology.hl7.org/CodeSystem/audit-event-type"
	RestfulSystem        = "http://hl7.org/fhir/restful-interaction"
	DICOMSystem          = "http://dicom.nema.org/resources/ontology/DCM"
	ActReasonSystem      = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
	EntityTypeSystem     = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
	ObjectRoleSystem     = "http://terminology.hl7.org/CodeSystem/object-role"
	// RecordSystem names a record by its CID in an identifier.
	RecordSystem = "urn:blockmrs:record"
	// NodeSystem names a node by its peer ID in an identifier.
	NodeSystem = "urn:blockmrs:node"
)

// AuditInput is one audit event to export as a FHIR R4 AuditEvent.
type AuditInput struct {
	// ID is the resource's id (letters, digits, '-' and '.', at most 64).
	ID       string
	Recorded time.Time
	// Kind is the node's kind of event: "read" and "serve" are exported
	// as type rest, subtype read; "emergency" as DICOM 110113 Security
	// Alert, subtype 110127 Emergency Override Started, purpose ETREAT;
	// grants, revocations and request answers as DICOM 110136 Security
	// Roles Changed; anything else as DICOM 110100 Application Activity.
	Kind string
	// Account is the agent who was served or acted; Peer its node, if
	// any.
	Account, Peer string
	// Patient is the account the event is about (the entity in role
	// patient); Records the records it names.
	Patient string
	Records []string
	// Rule and Reason say why it was allowed (exported as the agent's
	// policy and the event's outcome description).
	Rule, Reason string
	// Observer is the node that recorded the event (the source);
	// ReportedBy is set when another node reported it.
	Observer, ReportedBy string
}

type auditRef struct {
	Identifier identifier `json:"identifier"`
	Display    string     `json:"display,omitempty"`
}

type auditAgent struct {
	Type      *concept  `json:"type,omitempty"`
	Who       auditRef  `json:"who"`
	Requestor bool      `json:"requestor"`
	Policy    []string  `json:"policy,omitempty"`
	Network   *auditNet `json:"network,omitempty"`
}

type auditNet struct {
	Address string `json:"address"`
	Type    string `json:"type"`
}

type auditSource struct {
	Site     string   `json:"site,omitempty"`
	Observer auditRef `json:"observer"`
}

type auditEntity struct {
	What auditRef `json:"what"`
	Type *Coding  `json:"type,omitempty"`
	Role *Coding  `json:"role,omitempty"`
}

type auditEvent struct {
	ResourceType   string        `json:"resourceType"`
	ID             string        `json:"id,omitempty"`
	Type           Coding        `json:"type"`
	Subtype        []Coding      `json:"subtype,omitempty"`
	Action         string        `json:"action,omitempty"`
	Recorded       string        `json:"recorded"`
	Outcome        string        `json:"outcome"`
	OutcomeDesc    string        `json:"outcomeDesc,omitempty"`
	PurposeOfEvent []concept     `json:"purposeOfEvent,omitempty"`
	Agent          []auditAgent  `json:"agent"`
	Source         auditSource   `json:"source"`
	Entity         []auditEntity `json:"entity,omitempty"`
}

// AuditEvent returns in as the JSON of a FHIR R4 AuditEvent, checked
// with the FHIR library's R4 parser.
func AuditEvent(in AuditInput) ([]byte, error) {
	ev := auditEvent{ResourceType: "AuditEvent", ID: in.ID, Recorded: in.Recorded.UTC().Format("2006-01-02T15:04:05.000Z"),
		Outcome: "0", OutcomeDesc: in.Reason}
	switch in.Kind {
	case "read", "serve":
		ev.Type = Coding{System: AuditEventTypeSystem, Code: "rest", Display: "RESTful Operation"}
		ev.Subtype = []Coding{{System: RestfulSystem, Code: "read", Display: "read"}}
		ev.Action = "R"
	case "emergency":
		ev.Type = Coding{System: DICOMSystem, Code: "110113", Display: "Security Alert"}
		ev.Subtype = []Coding{{System: DICOMSystem, Code: "110127", Display: "Emergency Override Started"}}
		ev.Action = "E"
		ev.PurposeOfEvent = []concept{{Coding: []Coding{{System: ActReasonSystem, Code: "ETREAT", Display: "Emergency Treatment"}}}}
	case "grant", "revoke", "approve", "deny", "guardian":
		ev.Type = Coding{System: DICOMSystem, Code: "110136", Display: "Security Roles Changed"}
		ev.Action = "U"
	default:
		ev.Type = Coding{System: DICOMSystem, Code: "110100", Display: "Application Activity"}
		ev.Action = "E"
	}
	if in.Account != "" {
		a := auditAgent{Who: auditRef{Identifier: identifier{System: AccountSystem, Value: in.Account}}, Requestor: true}
		if in.Rule != "" {
			a.Policy = []string{"urn:blockmrs:rule:" + in.Rule}
		}
		if in.Peer != "" {
			a.Network = &auditNet{Address: in.Peer, Type: "5"} // 5: URI (a libp2p peer ID)
		}
		ev.Agent = append(ev.Agent, a)
	}
	observer := auditRef{Identifier: identifier{System: NodeSystem, Value: in.Observer}, Display: "BlockMRS node"}
	if in.ReportedBy != "" {
		observer = auditRef{Identifier: identifier{System: NodeSystem, Value: in.ReportedBy}, Display: "BlockMRS node that reported the event"}
	}
	// The node itself takes part as a non-requesting agent (an AuditEvent
	// needs at least one agent).
	ev.Agent = append(ev.Agent, auditAgent{Who: observer, Requestor: false,
		Type: &concept{Coding: []Coding{{System: DICOMSystem, Code: "110153", Display: "Source Role ID"}}}})
	ev.Source = auditSource{Site: "BlockMRS", Observer: observer}
	if in.Patient != "" {
		ev.Entity = append(ev.Entity, auditEntity{What: auditRef{Identifier: identifier{System: AccountSystem, Value: in.Patient}},
			Type: &Coding{System: EntityTypeSystem, Code: "1", Display: "Person"},
			Role: &Coding{System: ObjectRoleSystem, Code: "1", Display: "Patient"}})
	}
	for _, r := range in.Records {
		ev.Entity = append(ev.Entity, auditEntity{What: auditRef{Identifier: identifier{System: RecordSystem, Value: r}},
			Type: &Coding{System: EntityTypeSystem, Code: "2", Display: "System Object"},
			Role: &Coding{System: ObjectRoleSystem, Code: "4", Display: "Domain Resource"}})
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("AuditEvent: %w", err)
	}
	if _, u, err := codecs(); err != nil {
		return nil, fmt.Errorf("FHIR library: %w", err)
	} else if _, err := u.Unmarshal(data); err != nil {
		return nil, fmt.Errorf("AuditEvent %s is not valid R4: %w", in.ID, err)
	}
	return data, nil
}

// AuditBundle returns events as a FHIR R4 Bundle of type collection,
// timestamped now, each AuditEvent checked as AuditEvent does.
func AuditBundle(events []AuditInput, now time.Time) ([]byte, error) {
	var out bytes.Buffer
	bw := NewBundleWriter(&out, "collection")
	bw.Timestamp = now.UTC().Format(time.RFC3339)
	for _, in := range events {
		data, err := AuditEvent(in)
		if err != nil {
			return nil, err
		}
		if err := bw.Add(FullURL("AuditEvent", in.ID), data); err != nil {
			return nil, err
		}
	}
	if err := bw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
