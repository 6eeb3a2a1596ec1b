// The "Qorgau" group of the properties panel: role, form, deadline rule and cited clauses of
// a task; the role of a lane; the start form of a process.
import { TextFieldEntry, isTextFieldEntryEdited } from '@bpmn-io/properties-panel';
import { useService } from 'bpmn-js-properties-panel';

import { getBusinessObject, getProperty, is, processOfLane, setProperty } from './properties';

const TASK_FIELDS = [
  ['role', 'Role (code)'],
  ['formKey', 'Form key'],
  ['deadlineRule', 'Deadline rule'],
  ['clauses', 'Cited clauses (Reg …)'],
];

function PropertyField(props) {
  const { element, id, name, label, target } = props;
  const modeling = useService('modeling');
  const bpmnFactory = useService('bpmnFactory');
  const debounce = useService('debounceInput');
  const bo = target(element);
  const propertyName = typeof name === 'function' ? name(element) : name;
  return TextFieldEntry({
    element,
    id,
    label,
    debounce,
    getValue: () => (bo ? getProperty(bo, propertyName) : ''),
    setValue: (value) => bo && setProperty(element, bo, propertyName, value, modeling, bpmnFactory),
  });
}

function entry(element, name, label, target = getBusinessObject) {
  return {
    id: `qorgau-${typeof name === 'string' ? name : 'laneRole'}`,
    element,
    name,
    label,
    target,
    component: PropertyField,
    isEdited: isTextFieldEntryEdited,
  };
}

function laneRoleName(element) {
  const bo = getBusinessObject(element);
  return `role.${bo.name || bo.id}`;
}

function processOf(element) {
  const bo = getBusinessObject(element);
  if (is(bo, 'bpmn:Participant')) return bo.processRef || null;
  return bo;
}

export default class QorgauPropertiesProvider {
  constructor(propertiesPanel) {
    propertiesPanel.registerProvider(400, this);
  }

  getGroups(element) {
    return (groups) => {
      let entries = [];
      if (is(element, 'bpmn:UserTask') || is(element, 'bpmn:ManualTask') ||
          (is(element, 'bpmn:Task') && element.type === 'bpmn:Task')) {
        entries = TASK_FIELDS.map(([name, label]) => entry(element, name, label));
      } else if (is(element, 'bpmn:Lane')) {
        entries = [
          entry(element, laneRoleName, 'Role of the lane (when its name is not a role code)',
            (el) => processOfLane(getBusinessObject(el))),
        ];
      } else if (is(element, 'bpmn:Process') || is(element, 'bpmn:Participant')) {
        entries = [entry(element, 'startForm', 'Start form key', processOf)];
      }
      if (entries.length) {
        groups.splice(1, 0, { id: 'qorgau', label: 'Qorgau', entries });
      }
      return groups;
    };
  }
}

QorgauPropertiesProvider.$inject = ['propertiesPanel'];
